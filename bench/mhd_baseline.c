/* mhd_baseline.c — the §11.3 baseline: a minimal libmicrohttpd server that
 * answers every request with a fixed JSON body, with the same threading as
 * `agentcore serve` (epoll, a pool of N threads). Also serves as the local
 * webhook sink for the delivery benchmark, and — with a delay — as the slow
 * upstream of the waiting benchmark (a thread per connection that sleeps,
 * which is what a slow upstream looks like from outside).
 * With HANG_PERCENT, that share of requests hangs (60 s) instead: a
 * receiver that sometimes never answers. Any DELAY_MS (0 included) selects
 * the thread-per-connection server.
 * Usage: mhd_baseline PORT THREADS [DELAY_MS [HANG_PERCENT]] */
#include <microhttpd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char body[] = "{\"plugins\":[]}";
static unsigned delay_us;
static unsigned hang_percent;
static unsigned long requests; /* counts requests to pick the ones that hang */

static enum MHD_Result answer(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **state) {
  (void)cls; (void)url; (void)method; (void)version; (void)upload;
  if (!*state) {
    *state = (void *)1;
    return MHD_YES;
  }
  if (*upload_size) {
    *upload_size = 0;
    return MHD_YES;
  }
  if (hang_percent &&
      __atomic_fetch_add(&requests, 1, __ATOMIC_RELAXED) % 100 < hang_percent)
    sleep(60);
  else if (delay_us)
    usleep(delay_us);
  struct MHD_Response *r =
      MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_PERSISTENT);
  MHD_add_response_header(r, "Content-Type", "application/json");
  enum MHD_Result ok = MHD_queue_response(c, 200, r);
  MHD_destroy_response(r);
  return ok;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: mhd_baseline PORT THREADS [DELAY_MS]\n");
    return 2;
  }
  delay_us = argc > 3 ? (unsigned)atoi(argv[3]) * 1000u : 0;
  hang_percent = argc > 4 ? (unsigned)atoi(argv[4]) : 0;
  struct MHD_Daemon *d =
      argc > 3 ? MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD,
                                  (uint16_t)atoi(argv[1]), NULL, NULL, answer, NULL,
                                  MHD_OPTION_CONNECTION_LIMIT, (unsigned)4096,
                                  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_END)
               : MHD_start_daemon(MHD_USE_EPOLL_INTERNAL_THREAD, (uint16_t)atoi(argv[1]), NULL,
                                  NULL, answer, NULL, MHD_OPTION_THREAD_POOL_SIZE,
                                  (unsigned)atoi(argv[2]), MHD_OPTION_CONNECTION_TIMEOUT,
                                  (unsigned)30, MHD_OPTION_END);
  if (!d)
    return 1;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigprocmask(SIG_BLOCK, &set, NULL);
  int sig;
  sigwait(&set, &sig);
  MHD_stop_daemon(d);
  return 0;
}
