"""IPython startup file for `make portability`: sets torch's thread count in every notebook kernel.

The Makefile copies it into a throw-away IPYTHONDIR; NORMBOOK_TORCH_THREADS names the count.
OMP_NUM_THREADS cannot do this: torch caps it at the number of cores, and CI machines have 2.
"""

import os

if os.environ.get("NORMBOOK_TORCH_THREADS"):
    import torch

    torch.set_num_threads(int(os.environ["NORMBOOK_TORCH_THREADS"]))
    assert torch.get_num_threads() == int(os.environ["NORMBOOK_TORCH_THREADS"])
