"""`python scripts/bench.py --out FILE` = `ncae-bench --out FILE`: the benchmark is the package ncae_exp.bench."""
from ncae_exp.bench.cli import main
if __name__ == "__main__": raise SystemExit(main())  # noqa: E701
