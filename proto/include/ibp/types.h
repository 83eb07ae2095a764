/*
 * The values every part of the project agrees on: check types, statuses and
 * the caps on names, domains, URLs and texts. Header only; the vote engine,
 * the data library, the drivers and persist all include it, so a value
 * changes in one place.
 */
#ifndef IBP_TYPES_H
#define IBP_TYPES_H

/* Observations one monitor batch may carry at most (the publisher's default). */
#define IBP_MONITOR_MAX_BATCH_OBS_DEFAULT 5000

#endif
