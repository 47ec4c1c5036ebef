// compat13.h: keeps gorgonia.org/cu v0.9.6 building against CUDA 13 headers,
// where cuCtxCreate, cuMemAdvise, cuMemPrefetchAsync, cuGraphAddDependencies and
// cuGraphGetEdges are #defined to new signatures (_v4/_v2).
#pragma once
#include <cuda.h>
#include <stddef.h>

static inline CUresult cuCtxCreateCompat(CUcontext *p, unsigned int flags, CUdevice d) {
#if CUDA_VERSION >= 13000
	return cuCtxCreate(p, NULL, flags, d);
#else
	return cuCtxCreate(p, flags, d);
#endif
}
#if CUDA_VERSION >= 13000
static inline CUmemLocation cuLocOf(CUdevice d) {
	CUmemLocation l;
	l.type = d == CU_DEVICE_CPU ? CU_MEM_LOCATION_TYPE_HOST : CU_MEM_LOCATION_TYPE_DEVICE;
	l.id = d == CU_DEVICE_CPU ? 0 : d;
	return l;
}
#endif
static inline CUresult cuMemAdviseCompat(CUdeviceptr p, size_t n, CUmem_advise a, CUdevice d) {
#if CUDA_VERSION >= 13000
	return cuMemAdvise(p, n, a, cuLocOf(d));
#else
	return cuMemAdvise(p, n, a, d);
#endif
}
static inline CUresult cuMemPrefetchAsyncCompat(CUdeviceptr p, size_t n, CUdevice d, CUstream s) {
#if CUDA_VERSION >= 13000
	return cuMemPrefetchAsync(p, n, cuLocOf(d), 0, s);
#else
	return cuMemPrefetchAsync(p, n, d, s);
#endif
}
static inline CUresult cuGraphAddDependenciesCompat(CUgraph g, const CUgraphNode *from, const CUgraphNode *to, size_t n) {
#if CUDA_VERSION >= 13000
	return cuGraphAddDependencies(g, from, to, NULL, n);
#else
	return cuGraphAddDependencies(g, from, to, n);
#endif
}
static inline CUresult cuGraphGetEdgesCompat(CUgraph g, CUgraphNode *from, CUgraphNode *to, size_t *n) {
#if CUDA_VERSION >= 13000
	return cuGraphGetEdges(g, from, to, NULL, n);
#else
	return cuGraphGetEdges(g, from, to, n);
#endif
}
