"""`tally demo`: realistic synthetic agent logs, for trying tally and for benchmarks."""

from __future__ import annotations

from pathlib import Path

import typer

from pipelines.cli.context import progress_console

app = typer.Typer(help="Synthetic agent logs.", no_args_is_help=True)
console = progress_console()


@app.command()
def generate(
    out: Path = typer.Option(..., "--out", help="Directory to write claude/ and codex/ into."),
    megabytes: float = typer.Option(5.0, "--mb", min=0.01, help="Approximate corpus size."),
    seed: int = typer.Option(7, "--seed", help="Same seed, same corpus."),
    days: int = typer.Option(30, "--days", min=1, help="Days the sessions spread over."),
) -> None:
    """Write Claude Code transcripts and Codex rollouts with every real-world trap."""
    from ingestion.demo.corpus import generate_corpus
    from pipelines.cli.context import CommandFailed, failures_reported

    with failures_reported():
        try:
            corpus = generate_corpus(out, megabytes=megabytes, seed=seed, days=days)
        except OSError as error:
            raise CommandFailed(f"cannot write under {out}: {error.strerror}") from None
    totals = corpus.truth.totals()
    console.print(
        f"wrote {corpus.truth.files} files ({corpus.truth.bytes / 1e6:.1f} MB, "
        f"{totals['requests']:,} requests) under {out}\n"
        f"  TALLY_CLAUDE_DIR={corpus.claude_dir}\n  TALLY_CODEX_DIR={corpus.codex_dir}"
    )
