#!/usr/bin/env bash
# The fuzzer's deep run (docs/testing.md, "Fuzzing"): 1,000,000 loader inputs and 10,000
# scenarios run, in PIECES pieces of consecutive seeds from FIRST_SEED, each process under a
# 2 GiB address-space limit (ulimit -v) and at nice 10. Each piece logs to
# target/fuzz/deep-SEED.log and saves its findings in target/fuzz/deep-SEED/.
#
# Usage: fuzz/deep-run.sh [FIRST_SEED]   (env: PIECES=4 LOADER=250000 RUNS=2500)
# Exit status: 0 when no piece found anything; 1 otherwise.
set -uo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p mktme-fuzz || exit 2
first=${1:-11}
pieces=${PIECES:-4}
status=0
for seed in $(seq "$first" $((first + pieces - 1))); do
    out=target/fuzz/deep-$seed
    mkdir -p "$out"
    start=$(date +%s)
    (
        ulimit -v 2097152
        exec nice -n 10 target/release/mktme-fuzz --seed "$seed" \
            --loader-inputs "${LOADER:-250000}" --run-inputs "${RUNS:-2500}" \
            --keep-going --out "$out"
    ) > "$out.log" 2>&1
    code=$?
    case $code in
        0) verdict="nothing found" ;;
        1) verdict="FINDINGS, saved in $out" ;;
        # A signal: an allocation refused in the loader phase aborts (134), and says which
        # input in the log.
        *) verdict="THE FUZZER DIED (status $code; 134 is an abort), see $out.log" ;;
    esac
    echo "seed $seed: $verdict ($(($(date +%s) - start)) s)"
    [ "$code" -eq 0 ] || status=1
done
exit $status
