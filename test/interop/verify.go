// verify runs Go's crypto/x509 chain verification over PEM files so the test
// suite can check Signet's output against a strict, non-OpenSSL verifier.
// Stdlib only: CI and dev machines have no module proxy.
//
//	go run verify.go -roots root.pem -intermediates chain.pem -leaf leaf.pem \
//	    [-dns name] [-ip addr] [-eku server|client|any] [-time RFC3339]
//
// To check a CA certificate (e.g. intermediate against root), pass it as
// -leaf with -eku any; -ca additionally insists that it is a CA.
// Prints "OK" and exits 0, or prints the error and exits 1 (2 for usage).
package main

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

func main() {
	roots := flag.String("roots", "", "PEM file of trust anchors (required)")
	inters := flag.String("intermediates", "", "PEM file of intermediate certificates (optional, may be empty)")
	leaf := flag.String("leaf", "", "PEM file holding exactly one certificate to verify (required)")
	dns := flag.String("dns", "", "DNS name the leaf must be valid for")
	ip := flag.String("ip", "", "IP address the leaf must be valid for")
	eku := flag.String("eku", "server", "required extended key usage: server, client or any")
	at := flag.String("time", "", "verification time (RFC 3339); default now")
	ca := flag.Bool("ca", false, "require -leaf to be a CA certificate (implies -eku any unless set)")
	flag.Parse()
	if *roots == "" || *leaf == "" || flag.NArg() != 0 {
		usage("-roots and -leaf are required")
	}
	if err := run(*roots, *inters, *leaf, *dns, *ip, *eku, *at, *ca, isSet("eku")); err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	fmt.Println("OK")
}

func run(rootsFile, intersFile, leafFile, dns, ip, eku, at string, ca, ekuSet bool) error {
	rootCerts, err := load(rootsFile)
	if err != nil {
		return err
	}
	if len(rootCerts) == 0 {
		return fmt.Errorf("%s: no certificates", rootsFile)
	}
	var interCerts []*x509.Certificate
	if intersFile != "" {
		if interCerts, err = load(intersFile); err != nil {
			return err
		}
	}
	leafCerts, err := load(leafFile)
	if err != nil {
		return err
	}
	if len(leafCerts) != 1 {
		return fmt.Errorf("%s: want exactly one certificate, found %d", leafFile, len(leafCerts))
	}
	target := leafCerts[0]

	opts := x509.VerifyOptions{Roots: x509.NewCertPool(), Intermediates: x509.NewCertPool()}
	for _, c := range rootCerts {
		opts.Roots.AddCert(c)
	}
	for _, c := range interCerts {
		opts.Intermediates.AddCert(c)
	}
	if ca {
		if !target.BasicConstraintsValid || !target.IsCA {
			return errors.New("leaf is not a CA certificate (basicConstraints CA:TRUE missing)")
		}
		if !ekuSet {
			eku = "any"
		}
	}
	switch eku {
	case "server":
		opts.KeyUsages = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	case "client":
		opts.KeyUsages = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	case "any":
		opts.KeyUsages = []x509.ExtKeyUsage{x509.ExtKeyUsageAny}
	default:
		usage("-eku must be server, client or any")
	}
	if at != "" {
		t, err := time.Parse(time.RFC3339, at)
		if err != nil {
			usage("-time: " + err.Error())
		}
		opts.CurrentTime = t
	}
	if ip != "" && net.ParseIP(ip) == nil {
		usage("-ip: not an IP address: " + ip)
	}

	// VerifyOptions has a single DNSName, and Go matches it against IP SANs
	// when it parses as an IP, so -dns and -ip are checked as separate runs.
	names := []string{}
	for _, n := range []string{dns, ip} {
		if n != "" {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		names = append(names, "")
	}
	for _, n := range names {
		opts.DNSName = n
		if _, err := target.Verify(opts); err != nil {
			return err
		}
	}
	return nil
}

// load parses every block of a PEM file. Anything that is not a cleanly
// parsed CERTIFICATE (other block types, trailing garbage, DER that Go's
// strict parser refuses) is an error, never silently dropped.
func load(file string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var certs []*x509.Certificate
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("%s: unexpected PEM block %q", file, block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: certificate %d: %w", file, len(certs)+1, err)
		}
		// Go 1.23+ rejects negative serials at parse time (RFC 5280 4.1.2.2);
		// Debian's Go 1.19 still accepts them, so enforce it here.
		if c.SerialNumber.Sign() < 0 {
			return nil, fmt.Errorf("%s: certificate %d: x509: negative serial number", file, len(certs)+1)
		}
		certs = append(certs, c)
	}
	if strings.TrimSpace(string(rest)) != "" {
		return nil, fmt.Errorf("%s: data that is not PEM after certificate %d", file, len(certs))
	}
	return certs, nil
}

func isSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func usage(msg string) {
	fmt.Fprintln(os.Stderr, "verify:", msg)
	flag.Usage()
	os.Exit(2)
}
