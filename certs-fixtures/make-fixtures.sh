#!/usr/bin/env bash
# Regenerates the CSR fixtures used by test/pki-csr.test.ts with the real openssl CLI.
# Each file is named after what is wrong with it (or after the key, when nothing is).
# Existing files are kept unless FORCE=1, because the RSA 8192/8704 keys take minutes.
# Private keys live only in a temporary directory and are deleted on exit.
set -euo pipefail
cd "$(dirname "$0")"
command -v openssl >/dev/null || { echo "openssl is required" >&2; exit 1; }

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
FORCE=${FORCE:-0}

want() { [[ "$FORCE" == 1 || ! -s "$1" ]]; }

# csr OUT KEYGEN-ARGS... -- REQ-ARGS...
csr() {
  local out=$1; shift
  want "$out" || return 0
  local gen=() req=()
  while [[ $# -gt 0 && "$1" != "--" ]]; do gen+=("$1"); shift; done
  [[ $# -gt 0 ]] && shift
  req=("$@")
  openssl genpkey "${gen[@]}" -out "$TMP/key.pem" 2>/dev/null
  openssl req -new -key "$TMP/key.pem" "${req[@]}" -out "$out"
  echo "wrote $out"
}

SUBJ=(-subj "/CN=www.example.com")
SAN=(-addext "subjectAltName=DNS:www.example.com,DNS:example.com,IP:10.0.0.1,IP:2001:DB8:0:0:0:0:0:1,email:ops@example.com,URI:https://www.example.com/")

# Accepted keys.
csr csr-rsa-2048.pem -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -- "${SUBJ[@]}" "${SAN[@]}"
csr csr-rsa-8192-max.pem -algorithm RSA -pkeyopt rsa_keygen_bits:8192 -- "${SUBJ[@]}" "${SAN[@]}"
csr csr-ec-p256.pem -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -- "${SUBJ[@]}" "${SAN[@]}"
csr csr-ec-p384.pem -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -- "${SUBJ[@]}" "${SAN[@]}" -sha384
csr csr-ec-p521.pem -algorithm EC -pkeyopt ec_paramgen_curve:P-521 -- "${SUBJ[@]}" "${SAN[@]}" -sha512
csr csr-ed25519.pem -algorithm ED25519 -- "${SUBJ[@]}" "${SAN[@]}"

# Parse fine; the CA must ignore what they ask for or the name policy must refuse them.
csr csr-no-san.pem -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -- -subj "/CN=www.example.com"
csr csr-ca-true-requested.pem -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -- -subj "/CN=evil.example.com/O=Mallory" \
  -addext "subjectAltName=DNS:evil.example.com" -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
csr csr-ip-in-dns-san.pem -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -- -subj "/" -addext "subjectAltName=DNS:10.0.0.1"
csr csr-uppercase-dns-san.pem -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -- -subj "/" -addext "subjectAltName=DNS:WWW.Example.com"
csr csr-cn-not-in-san.pem -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -- -subj "/CN=other.example.com" -addext "subjectAltName=DNS:www.example.com"

# Refused keys.
csr csr-rsa-1024-weak.pem -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -- "${SUBJ[@]}" "${SAN[@]}"
csr csr-rsa-2052-odd-size.pem -algorithm RSA -pkeyopt rsa_keygen_bits:2052 -- "${SUBJ[@]}" "${SAN[@]}"
csr csr-rsa-8704-too-large.pem -algorithm RSA -pkeyopt rsa_keygen_bits:8704 -- "${SUBJ[@]}" "${SAN[@]}"
csr csr-secp256k1.pem -algorithm EC -pkeyopt ec_paramgen_curve:secp256k1 -- "${SUBJ[@]}" "${SAN[@]}"
csr csr-brainpoolp256r1.pem -algorithm EC -pkeyopt ec_paramgen_curve:brainpoolP256r1 -- "${SUBJ[@]}" "${SAN[@]}"
csr csr-ec-explicit-params.pem -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -pkeyopt ec_param_enc:explicit -- "${SUBJ[@]}" "${SAN[@]}"
csr csr-ed448.pem -algorithm ED448 -- "${SUBJ[@]}" "${SAN[@]}"
csr csr-rsa-pss-key.pem -algorithm RSA-PSS -pkeyopt rsa_keygen_bits:2048 -- "${SUBJ[@]}" "${SAN[@]}"
if want csr-dsa.pem; then
  openssl genpkey -genparam -algorithm DSA -pkeyopt dsa_paramgen_bits:2048 -out "$TMP/dsa-params.pem" 2>/dev/null
  openssl genpkey -paramfile "$TMP/dsa-params.pem" -out "$TMP/key.pem"
  openssl req -new -key "$TMP/key.pem" "${SUBJ[@]}" "${SAN[@]}" -sha256 -out csr-dsa.pem
  echo "wrote csr-dsa.pem"
fi

# Refused requests with acceptable keys.
csr csr-sha1-signature.pem -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -- "${SUBJ[@]}" "${SAN[@]}" -sha1
csr csr-two-common-names.pem -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -- -subj "/CN=a.example.com/CN=b.example.com" \
  -addext "subjectAltName=DNS:a.example.com,DNS:b.example.com"
csr csr-san-othername.pem -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -- -subj "/CN=www.example.com" \
  -addext "subjectAltName=DNS:www.example.com,otherName:1.3.6.1.4.1.311.20.2.3;UTF8:admin@example.com"
if want csr-wrong-label-certificate.pem; then
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$TMP/key.pem"
  openssl req -x509 -new -key "$TMP/key.pem" "${SUBJ[@]}" -days 1 -out csr-wrong-label-certificate.pem
  echo "wrote csr-wrong-label-certificate.pem"
fi

# A subject that needs RFC 4514 escaping, a multi-valued RDN and an attribute without a short name.
csr csr-dn-needs-escaping.pem -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -- \
  -subj '/C=US/O=Acme, Inc./OU=R\+D/CN=www.example.com+serialNumber=42' -addext "subjectAltName=DNS:www.example.com"

# Intermediate-style CA certificates carrying name constraints, for parseNameConstraintsExtension.
ca_nc() {
  local out=$1 nc=$2
  want "$out" || return 0
  # dirName constraints refer to a config section, so these use a config file of their own.
  printf '[req]\ndistinguished_name = dn\n[dn]\n[nc_dir]\nO = Acme\n' >"$TMP/nc.cnf"
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$TMP/key.pem"
  openssl req -config "$TMP/nc.cnf" -x509 -new -key "$TMP/key.pem" -subj "/CN=Constrained CA" -days 1 \
    -addext "basicConstraints=critical,CA:TRUE" -addext "nameConstraints=$nc" -out "$out"
  echo "wrote $out"
}
ca_nc ca-name-constraints.pem "critical,permitted;DNS:example.com,permitted;DNS:.example.net,permitted;IP:10.0.0.0/255.0.0.0,permitted;IP:2001:db8::/ffff:ffff::,permitted;email:.example.com,permitted;URI:.example.com,excluded;DNS:bad.example.com,excluded;IP:10.66.0.0/255.255.0.0,excluded;email:root@example.com"
ca_nc ca-name-constraints-directoryname-unsupported.pem "critical,permitted;DNS:example.com,permitted;dirName:nc_dir"

# Byte-level defects, derived from the good P-256 request.
openssl req -in csr-ec-p256.pem -outform DER -out "$TMP/p256.der"
node --input-type=module - "$TMP/p256.der" "$FORCE" <<'EOF'
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
const [src, force] = process.argv.slice(2);
const der = readFileSync(src);
const pem = (label, b) => `-----BEGIN ${label}-----\n${b.toString('base64').match(/.{1,64}/g).join('\n')}\n-----END ${label}-----\n`;
const write = (name, data) => {
  if (force !== '1' && existsSync(name)) return;
  writeFileSync(name, data);
  console.log(`wrote ${name}`);
};
// The signature BIT STRING is the last element, so the last byte is inside the signature value.
const flipped = Buffer.from(der);
flipped[flipped.length - 1] ^= 0x01;
write('csr-bad-signature.pem', pem('CERTIFICATE REQUEST', flipped));
write('csr-truncated.der', der.subarray(0, der.length - 20));
write('csr-trailing-bytes.der', Buffer.concat([der, Buffer.from([0x00, 0x00])]));
write('csr-garbage.txt', 'this is not a certificate request!\n');
EOF
