# packlm — build and test entry points.
#
#   make train        the main job: train gpt2:d12 on the embedded data (GPU),
#                     or the CPU reference trainer on a tiny model (no GPU)
#   make test         every CPU test; the GPU tests too when a GPU is visible
#   make test-gpu     only the GPU tests
#   make train_gpt    the trainer binary (nvcc)
#   make dev          standalone kernel programs under dev/cuda
#   make tools        data tools under dev/data (build/tools/NAME)
#   make compile-check  compile every .cu file (CI: no GPU needed)
#   make clean
#
# Knobs: GPU_ARCH=90a|90|80|... (default: detected with nvidia-smi; with no
# GPU visible, code for sm_80 and sm_90a, so the Hopper kernels are compiled too),
# NO_MULTI_GPU=1 (no NCCL), NO_MPI=1,
# CUDA_HOME=/path/to/cuda.

CC ?= gcc
NVCC ?= $(or $(shell command -v nvcc 2>/dev/null),$(CUDA_HOME)/bin/nvcc)
CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(realpath $(shell command -v nvcc 2>/dev/null)))
BUILD := build

# ---------------------------------------------------------------- GPU arch
# nvidia-smi prints e.g. "9.0"; keep only well-formed answers.
GPU_VISIBLE := $(shell nvidia-smi -L >/dev/null 2>&1 && echo 1)
DETECTED_CC := $(shell nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n 1 | tr -d '. ' | grep -E '^[0-9]+$$')
ifeq ($(GPU_ARCH),)
  ifneq ($(DETECTED_CC),)
    # Hopper: use the arch-specific target so wgmma/TMA paths are available
    GPU_ARCH := $(if $(filter 90,$(DETECTED_CC)),90a,$(DETECTED_CC))
  endif
endif
GPU_ARCHS := $(if $(GPU_ARCH),$(GPU_ARCH),80 90a)
GENCODE := $(foreach a,$(GPU_ARCHS),-gencode arch=compute_$(a),code=sm_$(a))

NVCC_FLAGS := -O3 -std=c++17 --use_fast_math -lineinfo -Xcompiler -fopenmp -Illmc $(GENCODE) \
              --expt-relaxed-constexpr -Wno-deprecated-gpu-targets
NVCC_LIBS := -lcublasLt -lcublas -lgomp

# ---------------------------------------------------------------- NCCL / MPI
ifeq ($(NO_MULTI_GPU),1)
  $(info NCCL: disabled (NO_MULTI_GPU=1))
  NVCC_FLAGS += -DNO_MULTI_GPU
else
  NCCL_LIB_DIR := $(firstword $(foreach d,$(CUDA_HOME)/lib $(CUDA_HOME)/lib64 $(CUDA_HOME)/targets/x86_64-linux/lib,$(if $(wildcard $(d)/libnccl.so*),$(d))) \
                   $(patsubst %/,%,$(dir $(shell /sbin/ldconfig -p 2>/dev/null | grep -o '/[^ ]*libnccl\.so[^ ]*' | head -n 1))))
  NCCL_HEADER := $(shell echo '\#include <nccl.h>' | $(NVCC) -E -x cu - >/dev/null 2>&1 && echo yes)
  ifeq ($(and $(NCCL_LIB_DIR),$(NCCL_HEADER)),)
    $(info NCCL: not found (header: $(or $(NCCL_HEADER),no), library: $(or $(NCCL_LIB_DIR),no)); building single-GPU only)
    NVCC_FLAGS += -DNO_MULTI_GPU
  else
    $(info NCCL: found (library in $(NCCL_LIB_DIR)))
    NVCC_LIBS += -L$(NCCL_LIB_DIR) -lnccl -Xlinker -rpath=$(NCCL_LIB_DIR)
  endif
endif
ifeq ($(NO_MPI),1)
  $(info MPI: disabled (NO_MPI=1))
else
  MPI_COMPILE := $(shell mpicc --showme:compile 2>/dev/null)
  MPI_LINK := $(shell mpicc --showme:link 2>/dev/null)
  ifeq ($(MPI_LINK),)
    $(info MPI: not found (no mpicc); mpirun launch disabled, Slurm/single-process launch still work)
  else
    $(info MPI: found (mpicc $(shell mpicc --showme:version 2>/dev/null | head -n 1 | cut -c1-40)))
    NVCC_FLAGS += -DUSE_MPI $(MPI_COMPILE)
    # nvcc takes -L/-l itself; anything else (-pthread, -Wl,...) goes to the host compiler
    NVCC_LIBS += $(foreach f,$(MPI_LINK),$(if $(filter -L% -l%,$(f)),$(f),-Xcompiler $(f)))
  endif
endif

# ---------------------------------------------------------------- CPU side
CFLAGS := -O2 -std=gnu11 -Wall -Wextra -Wno-unused-function -fopenmp -Illmc -Itest
CPU_LIBS := -lm
# utf8proc (Debian libutf8proc-dev) is linked only into the generator of the
# tokenizer's Unicode class table, dev/data/gen_unicode_classes.c: the table is
# committed, so nothing else needs the library (the GPU machine lacks it)
UTF8PROC_LIBS := $(or $(shell pkg-config --libs libutf8proc 2>/dev/null),$(if $(wildcard /usr/include/utf8proc.h),-lutf8proc))

# programs the test scripts call (each section adds its own); the test rules
# come last so that every addition is seen
TEST_DEPS := train_cpu

.PHONY: all train test test-cpu test-gpu dev tools compile-check clean
all: train_gpt

# ---------------------------------------------------------------- trainer
train_gpt: train_gpt.cu $(wildcard llmc/*.h llmc/*.cuh)
	$(NVCC) $(NVCC_FLAGS) $< $(NVCC_LIBS) -o $@

# CPU reference trainer (used by `make train` when no GPU is visible)
train_cpu: dev/train_cpu.c $(wildcard llmc/*.h)
	$(CC) $(CFLAGS) $< $(CPU_LIBS) -o $@

# the trainer is a prerequisite, not a recursive make: the NCCL / MPI /
# utf8proc lines above are printed once
ifeq ($(GPU_VISIBLE),1)
train: train_gpt
	./train_gpt
else
train: train_cpu
	@echo "make train: no GPU visible; running the CPU reference trainer on a tiny model instead"
	./train_cpu
endif

# ---------------------------------------------------------------- dev programs
DEV_CUDA_SRCS := $(wildcard dev/cuda/*.cu)
DEV_CUDA_BINS := $(patsubst dev/cuda/%.cu,dev/cuda/bin/%,$(DEV_CUDA_SRCS))

dev/cuda/bin/%: dev/cuda/%.cu $(wildcard llmc/*.h llmc/*.cuh dev/cuda/*.h test/*.h test/*.cuh)
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCC_FLAGS) -Idev/cuda $< $(NVCC_LIBS) -o $@

dev: $(DEV_CUDA_BINS)

# ---------------------------------------------------------------- data tools
# every dev/data/NAME.c is a command-line tool built as build/tools/NAME
TOOL_SRCS := $(wildcard dev/data/*.c)
ifeq ($(UTF8PROC_LIBS),)
  $(info utf8proc: not found; $(BUILD)/tools/gen_unicode_classes is not built (test_unicode_table.sh skips; apt-get install libutf8proc-dev))
  TOOL_SRCS := $(filter-out dev/data/gen_unicode_classes.c,$(TOOL_SRCS))
endif
TOOL_BINS := $(patsubst dev/data/%.c,$(BUILD)/tools/%,$(TOOL_SRCS))
$(BUILD)/tools/%: dev/data/%.c $(wildcard llmc/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< $(CPU_LIBS) -o $@
$(BUILD)/tools/gen_unicode_classes: dev/data/gen_unicode_classes.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< $(CPU_LIBS) $(UTF8PROC_LIBS) -o $@
tools: $(TOOL_BINS)
TEST_DEPS += $(TOOL_BINS)

# ---------------------------------------------------------------- fuzzing
# Each test/fuzz/fuzz_NAME.c defines LLVMFuzzerTestOneInput; test/fuzz.sh
# (part of `make test`) runs each for FUZZ_SECONDS with its seed corpus
# test/fuzz/corpus/NAME/ when present. Targets must never exit() on bad input.
FUZZ_CC ?= clang
FUZZ_SRCS := $(wildcard test/fuzz/*.c)
ifeq ($(shell command -v $(FUZZ_CC) 2>/dev/null),)
  $(info fuzzing: $(FUZZ_CC) not found; fuzz targets are not built and test/fuzz.sh skips (apt-get install clang))
  FUZZ_SRCS :=
endif
FUZZ_BINS := $(patsubst test/fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRCS))
$(BUILD)/fuzz/%: test/fuzz/%.c $(wildcard llmc/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Illmc $< $(CPU_LIBS) -o $@
TEST_DEPS += $(FUZZ_BINS)

# ---------------------------------------------------------------- tests
CPU_TEST_SRCS := $(wildcard test/*.c)
CPU_TEST_BINS := $(patsubst test/%.c,$(BUILD)/test/%,$(CPU_TEST_SRCS))
TEST_SCRIPTS := $(filter-out test/run_tests.sh,$(wildcard test/*.sh))
GPU_TEST_SRCS := $(wildcard test/*.cu)
GPU_TEST_BINS := $(patsubst test/%.cu,$(BUILD)/test/%,$(GPU_TEST_SRCS))

$(BUILD)/test/%: test/%.c $(wildcard llmc/*.h test/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< $(CPU_LIBS) -o $@

# train_gpt.cu too: test_train_gpt.cu includes it (TESTING) for train_step; dev/cuda/*.h:
# test_attention runs the cases of dev/cuda/attention_check.h
$(BUILD)/test/%: test/%.cu train_gpt.cu $(wildcard llmc/*.h llmc/*.cuh test/*.h test/*.cuh dev/cuda/*.h)
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCC_FLAGS) -Itest $< $(NVCC_LIBS) -o $@

test-cpu: $(CPU_TEST_BINS) $(TEST_DEPS)
	@test/run_tests.sh $(CPU_TEST_BINS) $(TEST_SCRIPTS)

test-gpu: $(GPU_TEST_BINS)
	@test/run_tests.sh $(GPU_TEST_BINS)

ifeq ($(GPU_VISIBLE),1)
test: $(CPU_TEST_BINS) $(TEST_DEPS) $(GPU_TEST_BINS)
	@test/run_tests.sh $(CPU_TEST_BINS) $(TEST_SCRIPTS) $(GPU_TEST_BINS)
else
test: test-cpu
endif

# every .cu in the tree, compiled for the selected architectures
compile-check: $(if $(wildcard train_gpt.cu),train_gpt) $(DEV_CUDA_BINS) $(GPU_TEST_BINS)
	@echo "compile-check: all .cu files compiled for sm_$(GPU_ARCHS)"

clean:
	rm -rf $(BUILD) train_gpt train_cpu dev/cuda/bin
