#ifndef SIGHTLINE_COPENBLAS_SHIM_H
#define SIGHTLINE_COPENBLAS_SHIM_H
#include <cblas.h>
// Declared by OpenBLAS's cblas.h; repeated so a reference-BLAS cblas.h still exposes it.
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
#endif
