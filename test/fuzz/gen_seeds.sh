#!/usr/bin/env bash
# Regenerates test/fuzz/corpus/ (committed) from gen_seeds.c: real models
# trained by the core, their payloads and truncations, and aggregate states.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
CC=${FUZZ_CC:-$(command -v clang-14 || command -v clang || command -v gcc)}
work=$(mktemp -d /tmp/media_reco_seeds.XXXXXX)
trap 'rm -rf "$work"' EXIT
"$CC" -g -O1 -std=gnu11 -Wno-ignored-attributes -fsanitize=address,undefined -fno-sanitize-recover=all \
    -I"$ROOT/src" -I"$("$PG_CONFIG" --includedir-server)" \
    "$ROOT/test/fuzz/gen_seeds.c" "$ROOT"/src/{core,model_blob,forest_core,training_core,parallel}.c \
    "$("$PG_CONFIG" --pkglibdir)"/libpgcommon.a "$("$PG_CONFIG" --pkglibdir)"/libpgport.a \
    -lpthread -lm -o "$work/gen_seeds"
for t in fuzz_envelope fuzz_forest fuzz_states; do
    rm -rf "$ROOT/test/fuzz/corpus/$t"
    mkdir -p "$ROOT/test/fuzz/corpus/$t"
done
ASAN_OPTIONS=fast_unwind_on_malloc=0 "$work/gen_seeds" "$ROOT/test/fuzz/corpus"
du -sh "$ROOT/test/fuzz/corpus"
