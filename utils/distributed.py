"""One code path for torchrun (NCCL on GPUs, gloo on CPU) and a plain single process."""
import os

import torch
import torch.distributed as dist

from .errors import UserError


def init_distributed():
    """Initialise the process group when launched by torchrun; return (rank, world_size, device)."""
    world_size = int(os.environ.get('WORLD_SIZE', 1))
    local_rank = int(os.environ.get('LOCAL_RANK', 0))
    if torch.cuda.is_available():
        device = torch.device('cuda', cuda_index(local_rank))
        torch.cuda.set_device(device)
    else:
        device = torch.device('cpu')
    if world_size > 1 and not dist.is_initialized():
        backend = 'nccl' if device.type == 'cuda' else 'gloo'
        dist.init_process_group(backend=backend, device_id=device if device.type == 'cuda' else None)
    return get_rank(), get_world_size(), device


def cuda_index(local_rank):
    """This process's GPU: LOCAL_RANK among the visible GPUs, or the only one when the launcher
    shows each process just its own (SLURM, Kubernetes, CUDA_VISIBLE_DEVICES per process)."""
    count = torch.cuda.device_count()
    if local_rank < count:
        return local_rank
    if count == 1:
        return 0
    raise UserError(f'LOCAL_RANK {local_rank}: this process sees {count} GPUs (CUDA_VISIBLE_DEVICES '
                    f'{os.environ.get("CUDA_VISIBLE_DEVICES", "unset")}); start one process per visible '
                    'GPU or show each process one GPU')


def is_dist():
    return dist.is_available() and dist.is_initialized()


def get_rank():
    return dist.get_rank() if is_dist() else 0


def get_world_size():
    return dist.get_world_size() if is_dist() else 1


def all_reduce_sum(tensor):
    """Sum a tensor over ranks in place (no-op in a single process)."""
    if is_dist():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def cleanup():
    if is_dist():
        dist.destroy_process_group()
