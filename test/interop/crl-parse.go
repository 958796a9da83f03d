// Parses CRLs with Go's crypto/x509 (a strict DER parser) and checks each one's signature
// against the issuer: crl-parse <issuer.pem> <crl.der>... prints one JSON object per CRL and
// exits non-zero at the first CRL Go refuses.
package main

import (
	"crypto/x509"
	"encoding/asn1"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
)

type out struct {
	File       string          `json:"file"`
	Number     string          `json:"number"`
	Base       *string         `json:"base"`
	Extensions map[string]bool `json:"extensions"`
	Serials    []string        `json:"serials"`
	Reasons    map[string]int  `json:"reasons"`
	Signature  string          `json:"signature"`
	ThisUpdate string          `json:"thisUpdate"`
	NextUpdate string          `json:"nextUpdate"`
}

func fail(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, format+"\n", a...)
	os.Exit(1)
}

func main() {
	if len(os.Args) < 3 {
		fail("usage: crl-parse <issuer.pem> <crl.der>...")
	}
	pemBytes, err := os.ReadFile(os.Args[1])
	if err != nil {
		fail("%v", err)
	}
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		fail("%s: no PEM certificate", os.Args[1])
	}
	issuer, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		fail("issuer: %v", err)
	}
	enc := json.NewEncoder(os.Stdout)
	for _, file := range os.Args[2:] {
		der, err := os.ReadFile(file)
		if err != nil {
			fail("%v", err)
		}
		crl, err := x509.ParseRevocationList(der)
		if err != nil {
			fail("%s: ParseRevocationList: %v", file, err)
		}
		if err := crl.CheckSignatureFrom(issuer); err != nil {
			fail("%s: signature: %v", file, err)
		}
		o := out{File: file, Number: crl.Number.String(), Extensions: map[string]bool{}, Serials: []string{}, Reasons: map[string]int{}, Signature: "ok",
			ThisUpdate: crl.ThisUpdate.UTC().Format("2006-01-02T15:04:05Z"), NextUpdate: crl.NextUpdate.UTC().Format("2006-01-02T15:04:05Z")}
		for _, e := range crl.Extensions {
			o.Extensions[e.Id.String()] = e.Critical
			if e.Id.String() == "2.5.29.27" {
				base := new(big.Int)
				if rest, err := asn1.Unmarshal(e.Value, &base); err != nil || len(rest) != 0 {
					fail("%s: deltaCRLIndicator is not one INTEGER", file)
				}
				s := base.String()
				o.Base = &s
			}
		}
		for _, r := range crl.RevokedCertificates {
			serial := r.SerialNumber.Text(16)
			o.Serials = append(o.Serials, serial)
			for _, e := range r.Extensions {
				if e.Id.String() == "2.5.29.21" {
					var code asn1.Enumerated
					if rest, err := asn1.Unmarshal(e.Value, &code); err != nil || len(rest) != 0 {
						fail("%s: reasonCode of %s is not one ENUMERATED", file, serial)
					}
					o.Reasons[serial] = int(code)
				}
			}
		}
		if err := enc.Encode(o); err != nil {
			fail("%v", err)
		}
	}
}
