#ifndef EMOTIONTAP_COPENBLAS_SHIM_H
#define EMOTIONTAP_COPENBLAS_SHIM_H
// Debian's libopenblas-dev: pkg-config `openblas` adds the include directory of the chosen variant.
#include <cblas.h>
#endif
