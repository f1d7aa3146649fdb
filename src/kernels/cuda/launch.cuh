/* launch.cuh - programmatic dependent launch (PDL), shared by the kernels.
 *
 * A kernel launched with launch_dependent may start while the kernel before it
 * on the stream still runs, once every block of that kernel has called
 * grid_dep_launch (or exited). Before grid_dep_wait it may only read what no
 * kernel of the stream writes (weights, the step's tables uploaded before the
 * kernel before it started); after it, that kernel has finished and its writes
 * are visible. Outside such a launch both are no-ops. The overlap hides the
 * launch and the first loads behind the previous kernel's tail; in a captured
 * graph the launches become programmatic edges. */
#ifndef PC_KERNELS_CUDA_LAUNCH_CUH
#define PC_KERNELS_CUDA_LAUNCH_CUH

#include <cuda_runtime.h>

namespace pcl {

/* Waits until the kernel before this one on the stream has finished. */
__device__ __forceinline__ void grid_dep_wait() { asm volatile("griddepcontrol.wait;\n" ::: "memory"); }
/* Lets the next kernel on the stream, if launched as a dependent, start now. */
__device__ __forceinline__ void grid_dep_launch() { asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory"); }

template <typename... P, typename... A>
cudaError_t launch_dependent(void (*kernel)(P...), dim3 grid, int threads, size_t smem, cudaStream_t s, A... args) {
    cudaLaunchAttribute at[1];
    at[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    at[0].val.programmaticStreamSerializationAllowed = 1;
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = grid;
    cfg.blockDim = dim3((unsigned)threads);
    cfg.dynamicSmemBytes = smem;
    cfg.stream = s;
    cfg.attrs = at;
    cfg.numAttrs = 1;
    return cudaLaunchKernelEx(&cfg, kernel, args...);
}

} // namespace pcl

#endif
