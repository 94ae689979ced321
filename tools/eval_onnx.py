"""Evaluate an ONNX model from tools.export as `main.py --eval` evaluates a checkpoint.

    python -m tools.eval_onnx --cfg configs/ucf101/VFL-Net_kd.yaml --onnx dvfl-net.onnx TEST.NUM_CLIP 4 TEST.NUM_CROP 3

The same run as main.py --eval (engine.run): DATA.VAL_FILE's videos, each once, in TEST.NUM_CLIP x
TEST.NUM_CROP views decoded and cropped as there, scored by the mean softmax over its views; top-1 /
top-5 logged, and log.jsonl, per_class.csv, confusion.csv and confusion.png written into
<--output, or the ONNX file's folder>/eval_<file name>_<clips>x<crops>/. onnxruntime runs on the
CPU (on CUDA when onnxruntime-gpu is installed and a GPU is there), float32 or INT8 as exported.
"""
import os

import torch

from config import load_config_file
from engine import run
from models.deploy import load_onnx
from utils import cli
from utils.errors import cli_main


def eval_folder(onnx, config, output=None):
    """<output or the ONNX file's folder>/eval_<file name>_<clips>x<crops>: a float32 and an INT8
    file next to each other get their own folders."""
    name = os.path.splitext(os.path.basename(onnx))[0]
    return os.path.join(output or os.path.dirname(os.path.abspath(onnx)),
                        f'eval_{name}_{config.TEST.NUM_CLIP}x{config.TEST.NUM_CROP}')


def onnx_device(device):
    """'cuda' where onnxruntime can run there too, else 'cpu'."""
    import onnxruntime

    cuda = device.type == 'cuda' and 'CUDAExecutionProvider' in onnxruntime.get_available_providers()
    return 'cuda' if cuda else 'cpu'


def main(argv=None):
    parser = cli.command_parser('python -m tools.eval_onnx', __doc__)
    cli.add_config_args(parser)
    parser.add_argument('--onnx', required=True, metavar='FILE', help='ONNX model written by tools.export')
    parser.add_argument('--output', metavar='PATH', help="where eval_<name>_<clips>x<crops>/ goes "
                                                         "(default: the ONNX file's folder)")
    args = cli.parse(parser, argv)

    config = load_config_file(args.cfg, args.opts)
    T, S = config.DATA.NUM_FRAMES, config.DATA.INPUT_SIZE
    load_onnx(args.onnx, T, S)  # a wrong file fails here, before any output folder is made
    config.defrost()
    config.EVAL_MODE = True
    config.OUTPUT = eval_folder(args.onnx, config, args.output)
    config.freeze()
    run(config, test_model=lambda device: load_onnx(args.onnx, T, S, onnx_device(device),
                                                    threads=torch.get_num_threads()))


if __name__ == '__main__':
    cli_main(main)
