"""Command line of the published-dataset converters."""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.settings import Settings


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m pipeline.published",
        description="Convert a published dataset into the delivery format (landing folder) "
        "and write the evaluation configuration it needs (docs/published_data.md).")
    p.add_argument("dataset", choices=["rossi"], help="rossi: Rossi, Berk & Lenihan (1980)")
    p.add_argument("--landing", type=Path, default=None, help="landing root (default: settings)")
    p.add_argument("--config-out", type=Path, default=None,
                   help="where to write the configuration (default: <landing>/../<id>.yaml)")
    p.add_argument("--no-carriers", action="store_true",
                   help="leave out work experience, marriage and parole (carried on history "
                   "covariates otherwise, so that the adjusted model is Fox's)")
    return p


def main(argv: list[str] | None = None) -> int:
    from pipeline.published import rossi
    from pipeline.published.deliver import write_rossi, write_rossi_config

    args = build_parser().parse_args(argv)
    landing = args.landing or Settings.from_env().landing_dir
    carry = not args.no_carriers
    folder = write_rossi(landing, carry=carry)
    config = args.config_out or landing.parent / f"{rossi.EXTRACT_ID}.yaml"
    write_rossi_config(config, carry=carry)
    print(f"wrote {folder}")
    print(f"configuration: {config}")
    print(f"run it: STALKING_EVAL_CONFIG={config} python -m pipeline run {rossi.EXTRACT_ID}")
    return 0
