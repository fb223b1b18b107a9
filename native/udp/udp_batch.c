// Batched UDP for the protective DNS resolver (src/filtering/dns/native-udp.ts).
//
// Node's dgram hands JavaScript one datagram per callback and takes one call per answer; at tens of
// thousands of queries a second that per-packet cost (a Buffer, an address object, a callback into
// JavaScript, a send request) is most of a query's time. Here the socket is read with recvmmsg(2)
// into memory JavaScript shares, JavaScript is called once per batch, and the answers it writes are
// sent with one sendmmsg(2). Each worker process may bind its own socket with SO_REUSEPORT so the
// kernel spreads queries over them (what unbound's so-reuseport does).
//
// Linux only; when this module is missing, the resolver uses node:dgram.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <node_api.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

// Per received datagram in the meta buffer: u16 length, u16 port, u8 family (4 or 6),
// u8 truncated, 2 unused, 16 address bytes (4 used for IPv4).
#define META_SIZE 24
// Per answer in the send-meta buffer: u16 length, u16 index of the datagram it answers.
#define SEND_META_SIZE 4
#define MAX_BATCH 256
// Batches read per readiness event before the event loop gets a turn (timers, TCP, upstream replies).
#define ROUNDS 8

typedef struct {
  napi_env env;
  int fd;
  int family;
  int closed;
  int polling;
  // freed when both the JavaScript handle and libuv's poll handle have let go
  int holders;
  uv_poll_t poll;
  napi_ref callback;
  napi_ref keep[4];
  napi_async_context async;
  uint8_t *recv_buf;
  uint8_t *meta;
  uint8_t *send_buf;
  uint8_t *send_meta;
  size_t slot;
  int batch;
  struct mmsghdr rmsgs[MAX_BATCH];
  struct iovec riov[MAX_BATCH];
  struct sockaddr_storage raddr[MAX_BATCH];
  struct mmsghdr smsgs[MAX_BATCH];
  struct iovec siov[MAX_BATCH];
  // sendMany: messages to addresses given by JavaScript (answers after an upstream replied, queries upstream)
  struct mmsghdr lmsgs[MAX_BATCH];
  struct iovec liov[MAX_BATCH];
  struct sockaddr_storage laddr[MAX_BATCH];
} udp_t;

#define CHECK(call)                                                                  \
  do {                                                                               \
    if ((call) != napi_ok) {                                                         \
      napi_throw_error(env, NULL, "gatehouse_udp: N-API call failed: " #call);      \
      return NULL;                                                                   \
    }                                                                                \
  } while (0)

static napi_value throw_errno(napi_env env, const char *what, int err) {
  char message[160];
  snprintf(message, sizeof message, "%s: %s", what, strerror(err));
  napi_value msg, error, code;
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg);
  napi_create_error(env, NULL, msg, &error);
  const char *name = err == EADDRINUSE ? "EADDRINUSE" : err == EACCES ? "EACCES" : err == EADDRNOTAVAIL ? "EADDRNOTAVAIL" : "EIO";
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code);
  napi_set_named_property(env, error, "code", code);
  napi_throw(env, error);
  return NULL;
}

static int buffer_arg(napi_env env, napi_value value, uint8_t **data, size_t *length) {
  bool is_buffer = false;
  if (napi_is_buffer(env, value, &is_buffer) != napi_ok || !is_buffer) return 0;
  void *raw;
  if (napi_get_buffer_info(env, value, &raw, length) != napi_ok) return 0;
  *data = raw;
  return 1;
}

// Parses an IP literal into a socket address for this socket's family (IPv4 becomes v4-mapped on IPv6).
static int parse_address(udp_t *u, const char *ip, int port, struct sockaddr_storage *out, socklen_t *length) {
  memset(out, 0, sizeof *out);
  if (u->family == AF_INET) {
    struct sockaddr_in *a = (struct sockaddr_in *)out;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, ip, &a->sin_addr) != 1) return 0;
    *length = sizeof *a;
    return 1;
  }
  struct sockaddr_in6 *a = (struct sockaddr_in6 *)out;
  a->sin6_family = AF_INET6;
  a->sin6_port = htons((uint16_t)port);
  if (inet_pton(AF_INET6, ip, &a->sin6_addr) != 1) {
    struct in_addr v4;
    if (inet_pton(AF_INET, ip, &v4) != 1) return 0;
    a->sin6_addr.s6_addr[10] = 0xff;
    a->sin6_addr.s6_addr[11] = 0xff;
    memcpy(&a->sin6_addr.s6_addr[12], &v4, 4);
  }
  *length = sizeof *a;
  return 1;
}

static void finalize(napi_env env, void *data, void *hint);

static void describe(udp_t *u, int i) {
  uint8_t *m = u->meta + (size_t)i * META_SIZE;
  struct mmsghdr *h = &u->rmsgs[i];
  unsigned length = h->msg_len;
  m[0] = (uint8_t)(length >> 8);
  m[1] = (uint8_t)length;
  m[5] = (h->msg_hdr.msg_flags & MSG_TRUNC) ? 1 : 0;
  struct sockaddr_storage *s = &u->raddr[i];
  if (s->ss_family == AF_INET) {
    struct sockaddr_in *a = (struct sockaddr_in *)s;
    uint16_t port = ntohs(a->sin_port);
    m[2] = (uint8_t)(port >> 8);
    m[3] = (uint8_t)port;
    m[4] = 4;
    memcpy(m + 8, &a->sin_addr, 4);
  } else {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)s;
    uint16_t port = ntohs(a->sin6_port);
    m[2] = (uint8_t)(port >> 8);
    m[3] = (uint8_t)port;
    if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) {
      m[4] = 4;
      memcpy(m + 8, &a->sin6_addr.s6_addr[12], 4);
    } else {
      m[4] = 6;
      memcpy(m + 8, &a->sin6_addr, 16);
    }
  }
}

static void call_js(udp_t *u, int count) {
  napi_env env = u->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value callback, recv, argv[1], result;
  if (napi_get_reference_value(env, u->callback, &callback) == napi_ok && callback != NULL) {
    napi_get_global(env, &recv);
    napi_create_int32(env, count, &argv[0]);
    napi_status status = napi_make_callback(env, u->async, recv, callback, 1, argv, &result);
    if (status == napi_pending_exception) {
      napi_value error;
      napi_get_and_clear_last_exception(env, &error);
      napi_fatal_exception(env, error);
    }
  }
  napi_close_handle_scope(env, scope);
}

static void on_readable(uv_poll_t *poll, int status, int events) {
  udp_t *u = poll->data;
  if (status < 0 || u->closed) return;
  for (int round = 0; round < ROUNDS; round++) {
    for (int i = 0; i < u->batch; i++) {
      u->rmsgs[i].msg_hdr.msg_namelen = sizeof(struct sockaddr_storage);
      u->rmsgs[i].msg_hdr.msg_flags = 0;
      u->rmsgs[i].msg_len = 0;
    }
    int n = recvmmsg(u->fd, u->rmsgs, (unsigned)u->batch, MSG_DONTWAIT, NULL);
    if (n <= 0) return;
    for (int i = 0; i < n; i++) describe(u, i);
    call_js(u, n);
    if (u->closed || n < u->batch) return;
  }
}

// open(host, port, reusePort, receiveBufferBytes, recvBuf, meta, sendBuf, sendMeta, slotSize, batch) -> [handle, port]
static napi_value udp_open(napi_env env, napi_callback_info info) {
  size_t argc = 10;
  napi_value argv[10];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 10) {
    napi_throw_type_error(env, NULL, "open needs 10 arguments");
    return NULL;
  }
  char host[64];
  size_t host_length;
  if (napi_get_value_string_utf8(env, argv[0], host, sizeof host, &host_length) != napi_ok) {
    napi_throw_type_error(env, NULL, "host must be a string");
    return NULL;
  }
  int32_t port, receive_buffer, slot, batch;
  bool reuse;
  CHECK(napi_get_value_int32(env, argv[1], &port));
  CHECK(napi_get_value_bool(env, argv[2], &reuse));
  CHECK(napi_get_value_int32(env, argv[3], &receive_buffer));
  CHECK(napi_get_value_int32(env, argv[8], &slot));
  CHECK(napi_get_value_int32(env, argv[9], &batch));
  if (batch < 1 || batch > MAX_BATCH || slot < 512 || slot > 65536) {
    napi_throw_range_error(env, NULL, "batch must be 1..256 and slot 512..65536");
    return NULL;
  }
  udp_t *u = calloc(1, sizeof *u);
  if (u == NULL) {
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  u->env = env;
  u->fd = -1;
  u->slot = (size_t)slot;
  u->batch = batch;
  size_t lengths[4];
  uint8_t **targets[4] = {&u->recv_buf, &u->meta, &u->send_buf, &u->send_meta};
  size_t needed[4] = {(size_t)slot * batch, (size_t)META_SIZE * batch, (size_t)slot * batch, (size_t)SEND_META_SIZE * batch};
  for (int i = 0; i < 4; i++) {
    if (!buffer_arg(env, argv[4 + i], targets[i], &lengths[i]) || lengths[i] < needed[i]) {
      free(u);
      napi_throw_range_error(env, NULL, "a shared buffer is missing or too small");
      return NULL;
    }
  }

  struct sockaddr_storage address;
  socklen_t address_length;
  u->family = strchr(host, ':') != NULL ? AF_INET6 : AF_INET;
  if (!parse_address(u, host, port, &address, &address_length)) {
    free(u);
    napi_throw_type_error(env, NULL, "host must be an IP address");
    return NULL;
  }
  int fd = socket(u->family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    int err = errno;
    free(u);
    return throw_errno(env, "socket", err);
  }
  int one = 1, zero = 0;
  if (reuse && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) goto failed;
  if (u->family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
  if (receive_buffer > 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
  if (bind(fd, (struct sockaddr *)&address, address_length) != 0) goto failed;
  struct sockaddr_storage bound;
  socklen_t bound_length = sizeof bound;
  if (getsockname(fd, (struct sockaddr *)&bound, &bound_length) != 0) goto failed;
  int bound_port = bound.ss_family == AF_INET ? ntohs(((struct sockaddr_in *)&bound)->sin_port) : ntohs(((struct sockaddr_in6 *)&bound)->sin6_port);
  u->fd = fd;

  for (int i = 0; i < batch; i++) {
    u->riov[i].iov_base = u->recv_buf + (size_t)i * u->slot;
    u->riov[i].iov_len = u->slot;
    u->rmsgs[i].msg_hdr.msg_iov = &u->riov[i];
    u->rmsgs[i].msg_hdr.msg_iovlen = 1;
    u->rmsgs[i].msg_hdr.msg_name = &u->raddr[i];
    u->smsgs[i].msg_hdr.msg_iov = &u->siov[i];
    u->smsgs[i].msg_hdr.msg_iovlen = 1;
  }
  for (int i = 0; i < 4; i++) CHECK(napi_create_reference(env, argv[4 + i], 1, &u->keep[i]));
  napi_value name;
  CHECK(napi_create_string_utf8(env, "gatehouse.dns.udp", NAPI_AUTO_LENGTH, &name));
  CHECK(napi_async_init(env, NULL, name, &u->async));

  uv_loop_t *loop;
  CHECK(napi_get_uv_event_loop(env, &loop));
  if (uv_poll_init(loop, &u->poll, fd) != 0) {
    napi_throw_error(env, NULL, "uv_poll_init failed");
    return NULL;
  }
  u->poll.data = u;

  napi_value result, handle, port_value;
  u->holders = 2;
  CHECK(napi_create_external(env, u, finalize, NULL, &handle));
  CHECK(napi_create_int32(env, bound_port, &port_value));
  CHECK(napi_create_array_with_length(env, 2, &result));
  CHECK(napi_set_element(env, result, 0, handle));
  CHECK(napi_set_element(env, result, 1, port_value));
  return result;

failed: {
  int err = errno;
  close(fd);
  free(u);
  return throw_errno(env, "bind", err);
}
}

static udp_t *handle_arg(napi_env env, napi_value value) {
  void *data = NULL;
  if (napi_get_value_external(env, value, &data) != napi_ok || data == NULL) {
    napi_throw_type_error(env, NULL, "not a socket handle");
    return NULL;
  }
  udp_t *u = data;
  if (u->closed) {
    napi_throw_error(env, NULL, "socket is closed");
    return NULL;
  }
  return u;
}

// start(handle, onBatch(count))
static napi_value udp_start(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  udp_t *u = handle_arg(env, argv[0]);
  if (u == NULL) return NULL;
  if (u->polling) return NULL;
  CHECK(napi_create_reference(env, argv[1], 1, &u->callback));
  uv_poll_start(&u->poll, UV_READABLE, on_readable);
  u->polling = 1;
  return NULL;
}

// flush(handle, count) -> answers sent; the answers sit in sendBuf slots 0..count-1
static napi_value udp_flush(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  udp_t *u = handle_arg(env, argv[0]);
  if (u == NULL) return NULL;
  int32_t count;
  CHECK(napi_get_value_int32(env, argv[1], &count));
  if (count < 0 || count > u->batch) {
    napi_throw_range_error(env, NULL, "count out of range");
    return NULL;
  }
  for (int i = 0; i < count; i++) {
    uint8_t *m = u->send_meta + (size_t)i * SEND_META_SIZE;
    size_t length = ((size_t)m[0] << 8) | m[1];
    unsigned from = ((unsigned)m[2] << 8) | m[3];
    if (from >= (unsigned)u->batch || length > u->slot) from = 0, length = 0;
    u->siov[i].iov_base = u->send_buf + (size_t)i * u->slot;
    u->siov[i].iov_len = length;
    u->smsgs[i].msg_hdr.msg_name = &u->raddr[from];
    u->smsgs[i].msg_hdr.msg_namelen = u->rmsgs[from].msg_hdr.msg_namelen;
  }
  int done = 0;
  while (done < count) {
    int r = sendmmsg(u->fd, u->smsgs + done, (unsigned)(count - done), MSG_DONTWAIT);
    if (r < 0) {
      if (errno == EINTR) continue;
      // A full send buffer or an unreachable client: skip one answer and go on (UDP may lose it anyway).
      done++;
      continue;
    }
    done += r;
  }
  napi_value result;
  CHECK(napi_create_int32(env, done, &result));
  return result;
}

// sendTo(handle, buffer, ip, port) -> true when sent (answers that come later, after an upstream replied)
static napi_value udp_send_to(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  udp_t *u = handle_arg(env, argv[0]);
  if (u == NULL) return NULL;
  uint8_t *data;
  size_t length;
  if (!buffer_arg(env, argv[1], &data, &length)) {
    napi_throw_type_error(env, NULL, "answer must be a Buffer");
    return NULL;
  }
  char ip[64];
  size_t ip_length;
  int32_t port;
  CHECK(napi_get_value_string_utf8(env, argv[2], ip, sizeof ip, &ip_length));
  CHECK(napi_get_value_int32(env, argv[3], &port));
  struct sockaddr_storage address;
  socklen_t address_length;
  bool ok = false;
  if (parse_address(u, ip, port, &address, &address_length)) {
    ssize_t r;
    do r = sendto(u->fd, data, length, MSG_DONTWAIT, (struct sockaddr *)&address, address_length);
    while (r < 0 && errno == EINTR);
    ok = r >= 0;
  }
  napi_value result;
  CHECK(napi_get_boolean(env, ok, &result));
  return result;
}

// sendMany(handle, buffer, meta, count) -> messages sent. Message i sits at buffer[i * slot]; its
// meta (LATER_META_SIZE bytes) holds length (2), family 4 or 6 (1), pad (1), port (2), pad (2), address (4 or 16).
#define LATER_META_SIZE 24
static napi_value udp_send_many(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  udp_t *u = handle_arg(env, argv[0]);
  if (u == NULL) return NULL;
  uint8_t *data, *meta;
  size_t data_length, meta_length;
  int32_t count;
  if (!buffer_arg(env, argv[1], &data, &data_length) || !buffer_arg(env, argv[2], &meta, &meta_length)) {
    napi_throw_type_error(env, NULL, "buffer and meta must be Buffers");
    return NULL;
  }
  CHECK(napi_get_value_int32(env, argv[3], &count));
  if (count < 0 || count > u->batch || (size_t)count * u->slot > data_length || (size_t)count * LATER_META_SIZE > meta_length) {
    napi_throw_range_error(env, NULL, "count out of range");
    return NULL;
  }
  int n = 0;
  for (int i = 0; i < count; i++) {
    uint8_t *m = meta + (size_t)i * LATER_META_SIZE;
    size_t length = ((size_t)m[0] << 8) | m[1];
    int port = (m[4] << 8) | m[5];
    if (length > u->slot) continue;
    struct sockaddr_storage *out = &u->laddr[n];
    memset(out, 0, sizeof *out);
    socklen_t address_length;
    if (u->family == AF_INET) {
      if (m[2] != 4) continue;
      struct sockaddr_in *a = (struct sockaddr_in *)out;
      a->sin_family = AF_INET;
      a->sin_port = htons((uint16_t)port);
      memcpy(&a->sin_addr, m + 8, 4);
      address_length = sizeof *a;
    } else {
      struct sockaddr_in6 *a = (struct sockaddr_in6 *)out;
      a->sin6_family = AF_INET6;
      a->sin6_port = htons((uint16_t)port);
      if (m[2] == 4) {
        a->sin6_addr.s6_addr[10] = 0xff;
        a->sin6_addr.s6_addr[11] = 0xff;
        memcpy(&a->sin6_addr.s6_addr[12], m + 8, 4);
      } else memcpy(&a->sin6_addr, m + 8, 16);
      address_length = sizeof *a;
    }
    u->liov[n].iov_base = data + (size_t)i * u->slot;
    u->liov[n].iov_len = length;
    memset(&u->lmsgs[n], 0, sizeof u->lmsgs[n]);
    u->lmsgs[n].msg_hdr.msg_iov = &u->liov[n];
    u->lmsgs[n].msg_hdr.msg_iovlen = 1;
    u->lmsgs[n].msg_hdr.msg_name = out;
    u->lmsgs[n].msg_hdr.msg_namelen = address_length;
    n++;
  }
  int done = 0, sent = 0;
  while (done < n) {
    int r = sendmmsg(u->fd, u->lmsgs + done, (unsigned)(n - done), MSG_DONTWAIT);
    if (r < 0) {
      if (errno == EINTR) continue;
      done++;  // skip one (a full buffer or an unreachable address): UDP may lose it anyway
      continue;
    }
    done += r;
    sent += r;
  }
  napi_value result;
  CHECK(napi_create_int32(env, sent, &result));
  return result;
}

static void release(udp_t *u) {
  if (--u->holders == 0) free(u);
}

static void on_closed(uv_handle_t *handle) {
  release(handle->data);
}

static void shut(udp_t *u) {
  if (u->closed) return;
  u->closed = 1;
  if (u->polling) uv_poll_stop(&u->poll);
  close(u->fd);
  uv_close((uv_handle_t *)&u->poll, on_closed);
}

static void finalize(napi_env env, void *data, void *hint) {
  udp_t *u = data;
  shut(u);
  release(u);
}

// close(handle): stops reading, closes the socket; the handle is unusable afterwards
static napi_value udp_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  void *data = NULL;
  if (napi_get_value_external(env, argv[0], &data) != napi_ok || data == NULL) return NULL;
  udp_t *u = data;
  if (u->closed) return NULL;
  if (u->callback) napi_delete_reference(env, u->callback);
  u->callback = NULL;
  for (int i = 0; i < 4; i++)
    if (u->keep[i]) napi_delete_reference(env, u->keep[i]);
  napi_async_destroy(env, u->async);
  // u itself lives on until the JavaScript handle is collected: `closed` guards later calls.
  shut(u);
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor properties[] = {
      {"open", NULL, udp_open, NULL, NULL, NULL, napi_default, NULL},
      {"start", NULL, udp_start, NULL, NULL, NULL, napi_default, NULL},
      {"flush", NULL, udp_flush, NULL, NULL, NULL, napi_default, NULL},
      {"sendTo", NULL, udp_send_to, NULL, NULL, NULL, napi_default, NULL},
      {"sendMany", NULL, udp_send_many, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, udp_close, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof properties / sizeof properties[0], properties);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
