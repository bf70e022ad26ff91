"""Plots of benchmark results, as PNG files (matplotlib, without a display)."""

from pathlib import Path

LINES = (("open", "--o", "open: no authentication"), ("auth", "-s", "auth: bearer token"))


def throughput_plot(runs: list, path: Path, *, title: str) -> None:
    """Tools/call throughput against concurrency, open and authenticated, a panel per database
    (``benchmarks.auth.DatabaseRun``), each authenticated point marked with auth/open and its 95% interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(runs), figsize=(6 * len(runs), 4.8), squeeze=False)
    for axis, run in zip(axes[0], runs, strict=True):
        clients = [level.concurrency for level in run.levels]
        for endpoint, style, label in LINES:
            axis.plot(clients, [level.calls_per_second(endpoint) for level in run.levels], style, label=label)
        for level in run.levels:
            axis.annotate(
                f"{level.ratio:.3f}\n± {level.ratio_half_width:.3f}",
                (level.concurrency, level.calls_per_second("auth")),
                textcoords="offset points",
                xytext=(0, -28),
                ha="center",
                fontsize=8,
            )
        axis.set_xscale("log", base=2)
        axis.set_xticks(clients, [str(count) for count in clients])
        axis.set_ylim(bottom=0)
        axis.set_xlabel("concurrent clients")
        axis.set_ylabel("tools/call per second")
        axis.set_title(f"{run.description.split(' (')[0]}; under the points: auth/open", fontsize=10)
        axis.grid(True, alpha=0.3)
        axis.legend(loc="lower right")
    figure.suptitle(f"MCP tools/call throughput with and without token verification\n{title}", fontsize=9)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
