/* The due-time queue of the check scheduler (see ibp/check_sched.h). Pure. */
#include "ibp/check_sched.h"

#include <stdlib.h>

#include "ibp/vec.h"

static bool before(const ibp_check_sched_entry *a, const ibp_check_sched_entry *b)
{
    return a->due_ms < b->due_ms || (a->due_ms == b->due_ms && a->order < b->order);
}

ibp_status ibp_check_sched_push(ibp_check_sched *s, int64_t due_ms, void *item)
{
    ibp_check_sched_entry *h = ibp_grow(s->heap, &s->cap, s->count + 1, sizeof *h);
    if (!h)
        return IBP_E_NOMEM;
    s->heap = h;
    ibp_check_sched_entry e = {.due_ms = due_ms, .order = s->next_order++, .item = item};
    size_t i = s->count++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!before(&e, &s->heap[parent]))
            break;
        s->heap[i] = s->heap[parent];
        i = parent;
    }
    s->heap[i] = e;
    return IBP_OK;
}

const ibp_check_sched_entry *ibp_check_sched_peek(const ibp_check_sched *s)
{
    return s->count ? &s->heap[0] : NULL;
}

bool ibp_check_sched_pop(ibp_check_sched *s, ibp_check_sched_entry *out)
{
    if (!s->count)
        return false;
    *out = s->heap[0];
    ibp_check_sched_entry last = s->heap[--s->count];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const ibp_check_sched_entry *best = &last;
        if (l < s->count && before(&s->heap[l], best)) {
            m = l;
            best = &s->heap[l];
        }
        if (r < s->count && before(&s->heap[r], best))
            m = r;
        if (m == i)
            break;
        s->heap[i] = s->heap[m];
        i = m;
    }
    if (s->count)
        s->heap[i] = last;
    return true;
}

size_t ibp_check_sched_due(const ibp_check_sched *s, int64_t now_ms)
{
    size_t n = 0;
    for (size_t i = 0; i < s->count; i++)
        n += s->heap[i].due_ms <= now_ms;
    return n;
}

void ibp_check_sched_clear(ibp_check_sched *s)
{
    s->count = 0;
}

void ibp_check_sched_free(ibp_check_sched *s)
{
    if (!s)
        return;
    free(s->heap);
    s->heap = NULL;
    s->count = s->cap = 0;
}
