#!/usr/bin/env bash
# Makes the certificates of a cluster's TLS between nodes (openssl CLI): a
# CA and, per node, a certificate it signed. Nodes accept a peer only with a
# certificate of the same CA (mutual authentication, see docs/cluster.md):
#
#   [cluster]
#   tls_ca_file   = "DIR/ca.pem"
#   tls_cert_file = "DIR/NAME.pem"
#   tls_key_file  = "DIR/NAME.key"
#
# Usage: deploy/make-cluster-certs.sh [--ca CA_DIR] DIR NAME...
#   DIR      where NAME.pem and NAME.key go (created; keys are mode 0600).
#   NAME...  one certificate per node (CN and DNS name = NAME), usable as TLS
#            server and client. One NAME shared by all nodes works too (the
#            Kubernetes DaemonSet uses "node").
#   --ca     keep the CA (ca.pem, ca.key) in CA_DIR instead of DIR, e.g. to
#            keep ca.key out of what gets deployed; ca.pem is copied to DIR.
# An existing CA is reused (add nodes later with the same CA_DIR); existing
# node files are replaced.
# Env: OSB_CERT_DAYS validity in days (default 825).
set -euo pipefail

ca_dir=""
if [ "${1:-}" = "--ca" ]; then
  ca_dir=${2:?--ca needs a directory}
  shift 2
fi
if [ $# -lt 2 ]; then
  sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi
dir=$1
shift
ca_dir=${ca_dir:-$dir}
days=${OSB_CERT_DAYS:-825}
command -v openssl >/dev/null || { echo "make-cluster-certs: openssl is required" >&2; exit 1; }
mkdir -p "$dir" "$ca_dir"
umask 077

new_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

if [ ! -s "$ca_dir/ca.pem" ] || [ ! -s "$ca_dir/ca.key" ]; then
  new_key "$ca_dir/ca.key"
  openssl req -x509 -new -key "$ca_dir/ca.key" -sha256 -days "$days" \
    -subj "/CN=opensandbox cluster CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$ca_dir/ca.pem"
  chmod 0644 "$ca_dir/ca.pem"
  echo "make-cluster-certs: new CA $ca_dir/ca.pem"
fi
[ "$ca_dir" = "$dir" ] || install -m 0644 "$ca_dir/ca.pem" "$dir/ca.pem"

ext=$(mktemp)
trap 'rm -f "$ext" "$dir"/*.csr' EXIT
for name in "$@"; do
  case $name in
    "" | */* | *..*) echo "make-cluster-certs: bad node name '$name'" >&2; exit 2 ;;
  esac
  new_key "$dir/$name.key"
  openssl req -new -key "$dir/$name.key" -subj "/CN=$name" -out "$dir/$name.csr"
  printf '%s\n' \
    "basicConstraints=critical,CA:FALSE" \
    "keyUsage=critical,digitalSignature,keyAgreement" \
    "extendedKeyUsage=serverAuth,clientAuth" \
    "subjectAltName=DNS:$name" >"$ext"
  openssl x509 -req -in "$dir/$name.csr" -CA "$ca_dir/ca.pem" \
    -CAkey "$ca_dir/ca.key" -set_serial "0x$(openssl rand -hex 16)" \
    -days "$days" -sha256 -extfile "$ext" -out "$dir/$name.pem" 2>/dev/null
  chmod 0644 "$dir/$name.pem"
  openssl verify -CAfile "$ca_dir/ca.pem" -purpose sslclient "$dir/$name.pem" >/dev/null
  openssl verify -CAfile "$ca_dir/ca.pem" -purpose sslserver "$dir/$name.pem" >/dev/null
  echo "make-cluster-certs: $dir/$name.pem, $dir/$name.key"
done
