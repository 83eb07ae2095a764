/*
 * Reading the network files again: SIGHUP (main thread) or the control
 * command "reload" (control thread), one at a time.
 */
#include <stdbool.h>
#include <stddef.h>

#include "ibp/log.h"
#include "ibp/store.h"
#include "node.h"

bool node_reload_checker_wants(const ibp_result *r, void *user)
{
    return ibp_checker_wants(user, r);
}

/*
 * SIGHUP or the control command "reload": reads the members, services and
 * checks files again and hands them to the checker, which keeps the schedule
 * of unchanged targets; the local results of targets that left the config
 * are dropped (the publisher would not send them anyway). A file that does
 * not load (or bad ExtraOptions) is refused and the old config stays. Only
 * the checks follow: the rest of the node (the store's member list, the dns
 * role) keeps the network it started with until a restart.
 */
ibp_status node_reload_network(node *n, ibp_err *err)
{
    const ibp_node_config *cfg = &n->cfg;
    if (!n->checker)
        return ibp_err_set(err, IBP_E_INVAL, "nothing to reload (not a monitor)");
    ibp_network *net = NULL;
    pthread_mutex_lock(&n->reload_lock);
    ibp_status st = ibp_network_load(cfg->network.members_file, cfg->network.services_file,
                                     cfg->network.checks_file, &net, err);
    if (st == IBP_OK)
        st = ibp_checker_reload(n->checker, net, err);
    if (st != IBP_OK) {
        pthread_mutex_unlock(&n->reload_lock);
        IBP_LOG(IBP_LOG_ERROR, NODE_COMPONENT, "reload refused, the old config stays: %s",
                err->msg);
        ibp_network_free(net);
        return st;
    }
    ibp_network_free(n->checks_network);
    n->checks_network = net;
    size_t dropped = 0;
    ibp_store_local_retain(ibp_data_store(n->data), node_reload_checker_wants, n->checker,
                           &dropped);
    pthread_mutex_unlock(&n->reload_lock);
    IBP_LOG(IBP_LOG_INFO, NODE_COMPONENT,
            "reloaded the network config members=%zu checks=%zu targets=%zu "
            "local_results_dropped=%zu",
            ibp_network_member_count(net), ibp_network_check_count(net),
            ibp_checker_target_count(n->checker), dropped);
    return IBP_OK;
}

ibp_status node_reload_control(void *user, ibp_err *err)
{
    return node_reload_network(user, err);
}
