"""Which device runs Inception-v4, in words for provenance, and the batch size it gets.

TensorFlow places the network on the first GPU it sees (``setup.sh --gpu`` installs the CUDA
build), else on the CPU. Feature files record the device (attribute ``device``), e.g.
``GPU: NVIDIA H200`` or ``CPU: AMD EPYC``. On a GPU, TensorFloat-32 is turned off, so float32
means float32 there too (TF32 keeps 10 of float32's 23 mantissa bits in convolutions). Shards
from CPUs and GPUs at one precision are then expected to agree within the 1e-4 tolerance, not
yet measured on a GPU: the merge accepts them and lists every device that made them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEVICE_ATTR = "device"
PRECISIONS = ("float32", "bfloat16")


@dataclass(frozen=True)
class RunOptions:
    """How the network runs on either backend: images a batch on a CPU (``batch_size``) and on
    a GPU (``gpu_batch_size``, None: the same), CPU threads, and the precision asked for.

    >>> RunOptions(batch_size=8).threads
    2
    >>> RunOptions(precision="float16")
    Traceback (most recent call last):
    ValueError: precision must be one of ('float32', 'bfloat16'), got 'float16'
    """

    batch_size: int = 16
    threads: int = 2
    precision: str = "float32"
    gpu_batch_size: int | None = None

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.batch_size < 1 or self.threads < 1:
            raise ValueError(
                f"batch_size and threads must be >= 1, got {self.batch_size}, {self.threads}"
            )


def cpu_model() -> str:
    """The CPU's model name (Linux), to say which machine a figure or a warning is about."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def visible_gpus(tf: Any) -> list[str]:
    """Names of the GPUs TensorFlow sees (empty on the CPU build or a machine without one)."""
    names = []
    for gpu in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(gpu)
        names.append(str(details.get("device_name") or gpu.name))
    return names


def prepare_device(tf: Any) -> str:
    """Set TensorFlow up for exact float32 on a GPU; return the device, in words.

    Call before the first session: TensorFloat-32 is a process-wide switch.
    """
    gpus = visible_gpus(tf)
    if not gpus:
        return f"CPU: {cpu_model()}"
    tf.config.experimental.enable_tensor_float_32_execution(False)
    return f"GPU: {gpus[0]}"


def batch_size_for(device: str, cpu_batch_size: int, gpu_batch_size: int | None) -> int:
    """The batch size for ``device`` (as :func:`prepare_device` words it)."""
    if device.startswith("GPU") and gpu_batch_size:
        return gpu_batch_size
    return cpu_batch_size


def merged_devices(devices: list[str]) -> str:
    """The ``device`` attribute of a merged file: every distinct device, sorted, ``; ``-joined."""
    return "; ".join(sorted(set(devices)))
