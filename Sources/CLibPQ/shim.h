#ifndef EMOTIONTAP_CLIBPQ_SHIM_H
#define EMOTIONTAP_CLIBPQ_SHIM_H
// libpq, PostgreSQL's own client library (Debian's libpq-dev): the shared history store talks to the
// server through it. Its API is plain functions on opaque handles, so nothing needs wrapping here.
#include <libpq-fe.h>
#endif
