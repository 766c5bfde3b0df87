#ifndef SIGHTLINE_CZEROMQ_SHIM_H
#define SIGHTLINE_CZEROMQ_SHIM_H
#include <zmq.h>
#endif
