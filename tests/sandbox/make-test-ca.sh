#!/usr/bin/env bash
# make-test-ca.sh DIR: a throwaway test CA and a server certificate for 127.0.0.1 / localhost, made
# with openssl at test time (nothing here is ever committed). Writes into DIR (created, mode 0700):
#   ca.pem         the CA certificate (what a client trusts: curl --cacert DIR/ca.pem)
#   ca.key         the CA's private key (RSA 2048; only used to sign server.pem)
#   server.pem     the server certificate: CN=localhost, SAN DNS:localhost, IP:127.0.0.1, 2 days
#   server.key     its private key (RSA 2048, PKCS#8 PEM) — for signbridge-sandbox --tls-key
# Usage with the sandbox:
#   tests/sandbox/make-test-ca.sh /tmp/sbx-tls
#   signbridge-sandbox --tls-cert /tmp/sbx-tls/server.pem --tls-key /tmp/sbx-tls/server.key
#   curl --cacert /tmp/sbx-tls/ca.pem https://127.0.0.1:8090/_sandbox/accounts
set -euo pipefail
DIR=${1:?usage: make-test-ca.sh DIR}
mkdir -p "$DIR"
chmod 700 "$DIR"
cd "$DIR"
umask 077

cat >ca.cnf <<'CNF'
[req]
distinguished_name = dn
prompt = no
x509_extensions = v3_ca
[dn]
CN = signbridge sandbox throwaway test CA
O = signbridge tests
[v3_ca]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
CNF

cat >server.cnf <<'CNF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = localhost
O = signbridge tests
[v3_server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
CNF

openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -sha256 \
  -config ca.cnf >/dev/null 2>&1
openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -config server.cnf \
  >/dev/null 2>&1
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem \
  -days 2 -sha256 -extfile server.cnf -extensions v3_server >/dev/null 2>&1
rm -f server.csr ca.srl
chmod 600 ca.key server.key
chmod 644 ca.pem server.pem
