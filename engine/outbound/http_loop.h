/* http_loop.h — one thread that runs many HTTP transfers at once on
 * libcurl's multi interface, so a plugin call waiting on the network costs
 * a socket, not a thread. Transfers are prepared on an ac_http_client
 * (ac_http_request_begin) by the thread running the call, run here, and
 * reported back through a callback; connections are reused across the
 * transfers of the loop. */
#ifndef AC_OUTBOUND_HTTP_LOOP_H
#define AC_OUTBOUND_HTTP_LOOP_H

#include "core/err.h"
#include "outbound/http_client.h"

#include <stdint.h>

typedef struct ac_http_loop ac_http_loop;

/* Called on the loop thread when a transfer ended; the client's result is
 * already recorded (ac_http_client_transfer_done), ready for
 * ac_http_request_finish. Must not block. */
typedef void (*ac_http_loop_done_fn)(void *ud);

/* max_per_host bounds the transfers running at once to one destination
 * (host and port): past it a transfer is refused at once
 * (AC_HTTP_RESULT_HOST_FULL), so a receiver that hangs holds that many
 * sockets at most, whoever calls it. */
int ac_http_loop_start(int max_per_host, ac_http_loop **out, ac_err *err);

/* Ends every transfer in flight or waiting (each is reported as cancelled
 * through its callback) and stops the thread. NULL: no-op. */
void ac_http_loop_stop(ac_http_loop *l);

/* Runs c's pending transfer, from ac_http_client_start_at(c) on; done(ud)
 * follows exactly once, on the loop thread. AC_ERR_BUSY when the loop is
 * stopping (done is not called; the transfer has not run). */
int ac_http_loop_add(ac_http_loop *l, ac_http_client *c, ac_http_loop_done_fn done, void *ud);

/* Transfers running or waiting to start. */
int ac_http_loop_in_flight(ac_http_loop *l);

#endif
