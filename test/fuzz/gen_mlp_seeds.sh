#!/usr/bin/env bash
# Regenerates test/fuzz/corpus/fuzz_mlp/ (committed) from gen_mlp_seeds.c.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
BLAS=$(PKG_CONFIG_PATH=$(ls -d /usr/lib/*/openblas-serial/pkgconfig | head -1) pkg-config --variable=libdir openblas)
work=$(mktemp -d /tmp/media_reco_mlp_seeds.XXXXXX)
trap 'rm -rf "$work"' EXIT
gcc -g -O1 -std=gnu11 -Wall -I"$ROOT/src" -I"$("$PG_CONFIG" --includedir-server)" \
    "$ROOT/test/fuzz/gen_mlp_seeds.c" "$ROOT"/src/{core,model_blob,training_core,mlp_core}.c \
    "$("$PG_CONFIG" --pkglibdir)"/libpgcommon.a "$("$PG_CONFIG" --pkglibdir)"/libpgport.a \
    -L"$BLAS" -Wl,-rpath,"$BLAS" -lopenblas -lm -o "$work/gen_mlp_seeds"
rm -rf "$ROOT/test/fuzz/corpus/fuzz_mlp"
mkdir -p "$ROOT/test/fuzz/corpus/fuzz_mlp"
"$work/gen_mlp_seeds" "$ROOT/test/fuzz/corpus/fuzz_mlp"
du -sh "$ROOT/test/fuzz/corpus/fuzz_mlp"
