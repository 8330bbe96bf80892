// Stand-in for the CUDA toolkit's cuda_runtime.h when the kernels are built for the CPU emulator.
#pragma once
#include "xseq_emu.h"
