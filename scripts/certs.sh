#!/bin/sh
# Make a local test CA and one certificate per peer name, with openssl only.
#
#   scripts/certs.sh DIR NAME...        (what `make certs` runs)
#
# Writes DIR/ca.pem + DIR/ca.key (the CA; created once, reused after) and, for
# each NAME, DIR/NAME.pem + DIR/NAME.key: a P-256 certificate signed by the CA,
# usable both as a server and as a client certificate (mTLS), whose
# subjectAltName holds IP:127.0.0.1, DNS:localhost and DNS:NAME, plus the
# comma-separated entries of $CERT_SANS (e.g. CERT_SANS=IP:10.0.0.5,DNS:a.lan).
# Valid for $CERT_DAYS days (default 30). Keys are written mode 600.
# For testing and small private federations; use your own PKI in production.
set -eu
if [ $# -lt 2 ]; then
    echo "usage: $0 DIR NAME..." >&2
    exit 2
fi
dir=$1
shift
days=${CERT_DAYS:-30}
mkdir -p "$dir"
umask 077
if [ ! -f "$dir/ca.pem" ] || [ ! -f "$dir/ca.key" ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$dir/ca.key" -out "$dir/ca.pem" -days "$days" -subj "/CN=fedflow local test CA" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
fi
for name in "$@"; do
    sans="IP:127.0.0.1,DNS:localhost,DNS:$name${CERT_SANS:+,$CERT_SANS}"
    printf '%s\n' "subjectAltName=$sans" "basicConstraints=critical,CA:FALSE" \
        "keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth,clientAuth" \
        > "$dir/$name.ext"
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$dir/$name.key" -out "$dir/$name.csr" -subj "/CN=$name" 2>/dev/null
    openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
        -out "$dir/$name.pem" -days "$days" -extfile "$dir/$name.ext" 2>/dev/null
    rm -f "$dir/$name.csr" "$dir/$name.ext"
    echo "$dir/$name.pem $dir/$name.key (signed by $dir/ca.pem)"
done
