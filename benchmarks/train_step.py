"""Training-step throughput on this machine: DeepLabV3+ encoders, in the default (NCHW) and the
channels_last memory format that `geoseg train` uses on a CPU, in fp32 and bf16 autocast.

    python benchmarks/train_step.py    # resnet18, mobilenet_v2, efficientnet-b0, lite0 (timm)
    python benchmarks/train_step.py --encoders resnet34 --crop 384 --batch 4

Random batches (forward, cross-entropy, backward, AdamW step); the first step is a warm-up.
Prints samples/s per encoder: NCHW fp32, channels_last fp32, channels_last bf16 (what
`training.precision: auto` picks on CPUs with AMX or AVX-512 BF16), and their ratios.
"""

from __future__ import annotations

import argparse
import sys
import time


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--encoders", default="resnet18,mobilenet_v2,efficientnet-b0,tu-tf_efficientnet_lite0"
    )
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=4)
    args = ap.parse_args()

    import segmentation_models_pytorch as smp
    import torch

    from geoseg.model.runtime import cpu_bf16, cpu_name

    print(
        f"{cpu_name()} (native bf16: {cpu_bf16() or 'no'}), torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, crop {args.crop}, batch {args.batch}"
    )
    print(
        "| encoder | NCHW fp32 samples/s | channels_last fp32 | channels_last bf16 "
        "| cl / NCHW | bf16 / fp32 |\n|---|---|---|---|---|---|"
    )
    cl = torch.channels_last
    for enc in args.encoders.split(","):
        rates = []
        for fmt, dtype in ((torch.contiguous_format, None), (cl, None), (cl, torch.bfloat16)):
            torch.manual_seed(0)
            model = smp.DeepLabV3Plus(encoder_name=enc, encoder_weights=None, classes=5)
            model = model.to(memory_format=fmt).train()
            opt = torch.optim.AdamW(model.parameters(), 1e-3)
            x = torch.randn(args.batch, 3, args.crop, args.crop).contiguous(memory_format=fmt)
            y = torch.randint(0, 5, (args.batch, args.crop, args.crop))
            for i in range(args.steps + 1):
                if i == 1:
                    t = time.perf_counter()
                with torch.autocast("cpu", dtype=dtype, enabled=dtype is not None):
                    loss = torch.nn.functional.cross_entropy(model(x).float(), y)
                opt.zero_grad()
                loss.backward()
                opt.step()
            rates.append(args.batch * args.steps / (time.perf_counter() - t))
        a, b, c = rates
        print(f"| {enc} | {a:.2f} | {b:.2f} | {c:.2f} | {b / a:.2f} | {c / b:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
