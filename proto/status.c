/* Status codes and error context; see ibp/status.h. */
#include "ibp/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const messages[] = {
#define IBP_STATUS_MSG(name, msg) msg,
    IBP_STATUS_LIST(IBP_STATUS_MSG)
#undef IBP_STATUS_MSG
};

static const char *const names[] = {
#define IBP_STATUS_NAME(name, msg) #name,
    IBP_STATUS_LIST(IBP_STATUS_NAME)
#undef IBP_STATUS_NAME
};

const char *ibp_strerror(ibp_status st)
{
    if ((unsigned)st >= IBP_STATUS_COUNT)
        return "unknown status";
    return messages[st];
}

const char *ibp_status_name(ibp_status st)
{
    if ((unsigned)st >= IBP_STATUS_COUNT)
        return "IBP_E_UNKNOWN";
    return names[st];
}

ibp_status ibp_err_set(ibp_err *err, ibp_status code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        err->code = code;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

ibp_status ibp_err_wrap(ibp_err *err, const char *fmt, ...)
{
    if (!err)
        return IBP_E_INVAL;
    char prefix[256];
    char old[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    /* Context beyond the buffer is cut off; the start of the chain matters most. */
    if (snprintf(err->msg, sizeof err->msg, "%s: %s", prefix, old) >= (int)sizeof err->msg)
        err->msg[sizeof err->msg - 1] = '\0';
    return err->code;
}

void ibp_err_clear(ibp_err *err)
{
    if (err) {
        err->code = IBP_OK;
        err->msg[0] = '\0';
    }
}
