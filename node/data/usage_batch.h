/*
 * Private to the usage modules: HitBatch framing. Cuts the sorted rows of a
 * flush (ibp/usage_aggregate.h) into HitBatch messages: one date per batch,
 * at most max_rows rows and max_batch_bytes packed bytes (the node id and
 * flush sequence the journal adds included). Pure: no clock, no I/O.
 */
#ifndef IBP_USAGE_BATCH_H
#define IBP_USAGE_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "ibp/date.h"
#include "ibp/ibp.pb-c.h"
#include "ibp/usage_aggregate.h"

#define IBP_USAGE_DATE_BUF IBP_DATE_BUF /* "YYYY-MM-DD" and its NUL */

/*
 * Frames the next batch from sel[0..n) (n > 0, sorted, all rows with a
 * count): the rows of sel[0]'s date, up to max_rows and max_batch_bytes
 * (always at least one row: a row is far below any limit). Fills rows[k] and
 * rowp[k] = &rows[k] for each row taken (the arrays hold max_rows or n
 * entries, whichever is less); the rows borrow their strings from sel and
 * from date, which receives the batch's date and must outlive them. Returns
 * the number of rows taken, with their total hits in *hits.
 */
size_t ibp__usage_batch_frame(ibp_usage_row *const *sel, size_t n, size_t max_rows,
                              size_t max_batch_bytes, char date[IBP_USAGE_DATE_BUF],
                              Ibp__V1__HitRow *rows, Ibp__V1__HitRow **rowp, uint64_t *hits);

#endif
