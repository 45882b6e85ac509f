"""Training-step throughput on this machine: DeepLabV3+ encoders, in the default (NCHW) and the
channels_last memory format that `geoseg train` uses on a CPU.

    python benchmarks/train_step.py                    # resnet18, mobilenet_v2, efficientnet-b0
    python benchmarks/train_step.py --encoders resnet34 --crop 384 --batch 4

Random batches (forward, cross-entropy, backward, AdamW step); the first step is a warm-up.
Prints samples/s per encoder and format, and the channels_last / NCHW ratio.
"""

from __future__ import annotations

import argparse
import sys
import time


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--encoders", default="resnet18,mobilenet_v2,efficientnet-b0")
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=4)
    args = ap.parse_args()

    import segmentation_models_pytorch as smp
    import torch

    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, crop {args.crop}, "
        f"batch {args.batch}"
    )
    print("| encoder | NCHW samples/s | channels_last samples/s | ratio |\n|---|---|---|---|")
    for enc in args.encoders.split(","):
        rates = []
        for fmt in (torch.contiguous_format, torch.channels_last):
            torch.manual_seed(0)
            model = smp.DeepLabV3Plus(encoder_name=enc, encoder_weights=None, classes=5)
            model = model.to(memory_format=fmt).train()
            opt = torch.optim.AdamW(model.parameters(), 1e-3)
            x = torch.randn(args.batch, 3, args.crop, args.crop).contiguous(memory_format=fmt)
            y = torch.randint(0, 5, (args.batch, args.crop, args.crop))
            for i in range(args.steps + 1):
                if i == 1:
                    t = time.perf_counter()
                loss = torch.nn.functional.cross_entropy(model(x), y)
                opt.zero_grad()
                loss.backward()
                opt.step()
            rates.append(args.batch * args.steps / (time.perf_counter() - t))
        print(f"| {enc} | {rates[0]:.2f} | {rates[1]:.2f} | {rates[1] / rates[0]:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
