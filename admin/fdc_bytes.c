/*
 * fdc_bytes.c — the byte ring holding the data of libfdclient's changes from
 * their call until their callback: allocated once by fdc_open, so a change
 * costs a memcpy and no allocation, and bounded by inflight_bytes_max.
 * Spans are taken in call order and given back in any order (fdc_int.h).
 */
#include <errno.h>
#include <stdlib.h>

#include "fd_assert.h"
#include "fdc_int.h"

int fdc_bytes_init(fdc_bytes_t *b, uint64_t cap, uint32_t nspans) {
  FD_ASSERT(cap >= FD_WRITE_BYTES_MAX && nspans > 0);
  *b = (fdc_bytes_t){0};
  b->buf = malloc(cap); /* large: mapped, its pages touched only as changes use them */
  b->spans = calloc(nspans, sizeof(*b->spans));
  if (!b->buf || !b->spans) {
    fdc_bytes_deinit(b);
    return -ENOMEM;
  }
  b->cap = cap;
  b->nspans = nspans;
  return 0;
}

void fdc_bytes_deinit(fdc_bytes_t *b) {
  free(b->buf);
  free(b->spans);
  *b = (fdc_bytes_t){0};
}

/* Where len bytes would go: at the tail, or at the start of the next lap when
 * they would not fit before the end of the buffer. */
static uint64_t place(const fdc_bytes_t *b, uint32_t len) {
  uint64_t pos = b->tail;
  if (pos % b->cap + len > b->cap) pos += b->cap - pos % b->cap;
  return pos;
}

bool fdc_bytes_fit(const fdc_bytes_t *b, uint32_t len) {
  FD_ASSERT(len > 0 && len <= b->cap);
  return b->span_tail - b->span_head < b->nspans && place(b, len) + len - b->head <= b->cap;
}

uint32_t fdc_bytes_take(fdc_bytes_t *b, uint32_t len, uint64_t *pos) {
  FD_ASSERT(fdc_bytes_fit(b, len));
  *pos = place(b, len);
  b->tail = *pos + len;
  uint32_t id = b->span_tail++;
  b->spans[id % b->nspans] = (fdc_span_t){.end = b->tail, .held = true};
  return id;
}

void fdc_bytes_give(fdc_bytes_t *b, uint32_t span) {
  FD_ASSERT(span - b->span_head < b->span_tail - b->span_head); /* a span still out */
  fdc_span_t *s = &b->spans[span % b->nspans];
  FD_ASSERT(s->held);
  s->held = false;
  while (b->span_head != b->span_tail && !b->spans[b->span_head % b->nspans].held)
    b->head = b->spans[b->span_head++ % b->nspans].end;
  if (b->span_head == b->span_tail) b->head = b->tail = 0; /* empty: start the lap over */
}
