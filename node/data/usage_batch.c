/*
 * HitBatch framing for usage flushes; see usage_batch.h. Pure.
 */
#include "usage_batch.h"

#include "ibp/roster.h"

static void row_of(const ibp_usage_row *r, Ibp__V1__HitRow *row, char *date)
{
    const char *f[IBP_USAGE_FIELDS];
    ibp__usage_block_fields(r->block, f);
    ibp__v1__hit_row__init(row);
    /* protobuf-c's string fields are char *; the packer only reads them. */
    row->date = date;
    row->domain = (char *)f[0];
    row->member = (char *)f[1];
    row->country_code = (char *)f[2];
    row->asn = (char *)f[3];
    row->network_name = (char *)f[4];
    row->country_name = (char *)f[5];
    row->ipv6 = r->ipv6;
    row->hits = r->count;
}

size_t ibp__usage_batch_frame(ibp_usage_row *const *sel, size_t n, size_t max_rows,
                              size_t max_batch_bytes, char date[IBP_USAGE_DATE_BUF],
                              Ibp__V1__HitRow *rows, Ibp__V1__HitRow **rowp, uint64_t *hits)
{
    size_t j = 0;
    *hits = 0;
    ibp_date_format(sel[0]->day, date);
    /* Room for node and flush_seq; each row costs its bytes plus tag and length. */
    size_t bytes = 2 + IBP_NODE_ID_MAX + 11;
    while (j < n && sel[j]->day == sel[0]->day && j < max_rows) {
        row_of(sel[j], &rows[j], date);
        size_t rb = ibp__v1__hit_row__get_packed_size(&rows[j]) + 1 + 3;
        if (j > 0 && bytes + rb > max_batch_bytes)
            break; /* a batch always takes one row: a row is far below any limit */
        bytes += rb;
        rowp[j] = &rows[j];
        *hits += sel[j]->count;
        j++;
    }
    return j;
}
