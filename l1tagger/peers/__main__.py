"""``python -m l1tagger.peers``: HGQ2 peer taggers trained on an ``l1tagger run``'s jets, rows in ``OUT/peers.{json,md}``.

    python -m l1tagger.peers --run runs/default --features l1 --kinds linformer mha --out results/peers

Exit codes as ``l1tagger``: 1 for a user-caused failure (one line on stderr), 3 when a peer is not bit-exact (its
row is written first), 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys

from l1tagger.errors import L1TaggerError, NotBitExactError
from l1tagger.peers import PEER_KINDS

PROG = "python -m l1tagger.peers"


def build_parser() -> argparse.ArgumentParser:
    from l1tagger.peers.hgq2 import MIN_BITEXACT_JETS, PeerConfig

    d = PeerConfig()
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--run", required=True, help="the l1tagger run directory whose jets, split and scaler to use")
    p.add_argument("--out", required=True, help="folder of peers.json / peers.md and one folder per peer")
    p.add_argument("--kinds", nargs="+", default=["linformer", "mha"], choices=PEER_KINDS, help="peers to build")
    p.add_argument("--features", default=None, help="particle feature set (default: the run's)")
    p.add_argument("--n-particles", type=int, default=None, help="particles per jet (default: the run's)")
    p.add_argument("--signal-efficiency", type=float, default=0.5, help="working point of the rejection column")
    p.add_argument("--min-bitexact-jets", type=int, default=MIN_BITEXACT_JETS,
                   help="least number of test jets the bit-exact check must cover")
    p.add_argument("--latency-cutoff", type=float, default=None,
                   help="da4ml pipelining cutoff (default: the run's rtl_latency_cutoff, as its own da4ml cost)")
    for f in ("embed_dim", "n_heads", "key_dim", "linformer_k", "ffn_dim", "hidden_dim", "weight_bits",
              "act_frac_bits", "epochs", "batch_size", "seed", "num_threads"):
        p.add_argument(f"--{f.replace('_', '-')}", type=int, default=getattr(d, f), dest=f)
    for f in ("beta0", "beta_final", "ramp_fraction", "lr"):
        p.add_argument(f"--{f.replace('_', '-')}", type=float, default=getattr(d, f), dest=f)
    return p


def main(argv: list[str] | None = None) -> int:
    import dataclasses

    from l1tagger.peers.hgq2 import PeerConfig, run

    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    cfg = PeerConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(PeerConfig) if f.name != "kind"})
    try:
        doc = run(args.run, args.kinds, args.out, cfg, features=args.features, n_particles=args.n_particles,
                  signal_efficiency=args.signal_efficiency, min_bitexact_jets=args.min_bitexact_jets,
                  latency_cutoff=args.latency_cutoff, argv=["python", "-m", "l1tagger.peers", *argv])
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except L1TaggerError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 3 if isinstance(exc, NotBitExactError) else 1
    except OSError as exc:
        from l1tagger.cli import os_error_message

        print(f"{PROG}: error: {os_error_message(exc)}", file=sys.stderr)
        return 1
    print(f"{len(doc['rows'])} rows in {args.out}/peers.json and peers.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
