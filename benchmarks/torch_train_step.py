"""The same DCGAN-64 training step in PyTorch fp32, as the yardstick for benchmarks/train_step.py.

PyTorch is not a tinygan dependency; this script is only for comparison on
machines that have it (CPU here, or a GPU with ``--device cuda``). The step is
the PyTorch DCGAN tutorial's: D on a real and a fake batch, Adam, then G
through D, Adam; D outputs logits and the loss is BCEWithLogitsLoss.

    python benchmarks/torch_train_step.py [--device cpu|cuda] [--batch 128] [--steps 6] [--channels-last]
    python benchmarks/torch_train_step.py --generation     # G alone in eval mode, 1,024 faces in batches of 256
"""
import argparse
import time


def dcgan(torch, nz=100, ngf=64, ndf=64):
    nn = torch.nn
    g, width = [nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 8), nn.ReLU(True)], ngf * 8
    for _ in range(3):
        g += [nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(width // 2), nn.ReLU(True)]
        width //= 2
    g += [nn.ConvTranspose2d(width, 3, 4, 2, 1, bias=False), nn.Tanh()]
    d, width = [nn.Conv2d(3, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True)], ndf
    for _ in range(3):
        d += [nn.Conv2d(width, width * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(width * 2),
              nn.LeakyReLU(0.2, inplace=True)]
        width *= 2
    d += [nn.Conv2d(width, 1, 4, 1, 0, bias=False)]
    return nn.Sequential(*g), nn.Sequential(*d)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: %(default)s)")
    parser.add_argument("--batch", type=int, default=128, help="batch size (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=6, help="timed steps (default: %(default)s)")
    parser.add_argument("--channels-last", action="store_true",
                        help="the models and the images in channels_last (NHWC) memory: PyTorch's fastest fp32 "
                             "setting on a CPU (oneDNN's convolutions on NHWC)")
    parser.add_argument("--generation", action="store_true",
                        help="time generation instead (as benchmarks/train_step.py does for tinygan)")
    args = parser.parse_args()
    import torch
    device = torch.device(args.device)
    layout = torch.channels_last if args.channels_last else torch.contiguous_format
    net_g, net_d = (m.to(device, memory_format=layout) for m in dcgan(torch))
    if args.generation:
        return measure_generation(torch, net_g, device)
    opt_g = torch.optim.Adam(net_g.parameters(), 2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(net_d.parameters(), 2e-4, betas=(0.5, 0.999))
    bce = torch.nn.BCEWithLogitsLoss()
    real = (torch.rand(args.batch, 3, 64, 64, device=device) * 2 - 1).contiguous(memory_format=layout)
    ones = torch.ones(args.batch, device=device)
    zeros = torch.zeros(args.batch, device=device)

    def step():
        fake = net_g(torch.randn(args.batch, 100, 1, 1, device=device).contiguous(memory_format=layout))
        opt_d.zero_grad()
        d_loss = bce(net_d(real).view(-1), ones) + bce(net_d(fake.detach()).view(-1), zeros)
        d_loss.backward()
        opt_d.step()
        opt_g.zero_grad()
        bce(net_d(fake).view(-1), ones).backward()
        opt_g.step()

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()
    for _ in range(2):
        step()
    sync()
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t0)
    times.sort()
    median = times[len(times) // 2]
    print(f"RESULT PyTorch {torch.__version__} fp32{' channels_last' if args.channels_last else ''} on {args.device} "
          f"({torch.get_num_threads()} threads): {args.batch / median:.1f} img/s at batch {args.batch} (best step {args.batch / times[0]:.1f})")


def measure_generation(torch, net_g, device, n=1024, batch=256):
    """Faces per second of G in eval mode without gradients, as tinygan's sampling.generate_images runs it."""
    net_g.eval()

    def generate(count):
        with torch.no_grad():
            for _ in range(0, count, batch):
                net_g(torch.randn(batch, 100, 1, 1, device=device)).cpu()
    generate(batch)                                      # warm up
    start = time.perf_counter()
    generate(n)
    print(f"RESULT PyTorch {torch.__version__} fp32 on {device.type} ({torch.get_num_threads()} threads): "
          f"generation {n / (time.perf_counter() - start):.0f} faces/s (eval mode, batch {batch})")


if __name__ == "__main__":
    main()
