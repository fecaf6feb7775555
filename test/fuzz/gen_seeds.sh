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
# v0-* files are kept: forests of payload version 0 (media_reco 0.4.0, no node
# covers), written by the code of that release; the current code cannot make them
for t in fuzz_envelope fuzz_forest fuzz_states; do
    mkdir -p "$ROOT/test/fuzz/corpus/$t"
    find "$ROOT/test/fuzz/corpus/$t" -maxdepth 1 -type f ! -name 'v0-*' -delete
done
ASAN_OPTIONS=fast_unwind_on_malloc=0 "$work/gen_seeds" "$ROOT/test/fuzz/corpus"
du -sh "$ROOT/test/fuzz/corpus"
