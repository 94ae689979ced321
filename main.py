"""Train or evaluate one Video-FocalNet / VFL-Net model (single process or torchrun DDP).

    torchrun --nproc_per_node 3 main.py --cfg configs/ucf101/video-focalnet_base.yaml --output output/
    python main.py --eval --cfg configs/ucf101/VFL-Net.yaml --resume CKPT TEST.NUM_CLIP 4 TEST.NUM_CROP 3

--eval writes into its own folder, <checkpoint's folder or --output>/eval_<clips>x<crops>/, and
leaves the training run's files as they are.
"""
from config import parse_option
from engine import run
from utils.errors import cli_main


def main():
    run(parse_option(__doc__)[1])


if __name__ == '__main__':
    cli_main(main)
