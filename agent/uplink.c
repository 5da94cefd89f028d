/* uplink.c - the registry of uplinks built into this binary. */
#include <string.h>

#include "uplink.h"

#ifdef TERN_WITH_MQTT
extern const struct tern_uplink_ops tern_uplink_mqtt;
#endif
#ifdef TERN_WITH_KAFKA
extern const struct tern_uplink_ops tern_uplink_kafka;
#endif

static const struct tern_uplink_ops *const uplinks[] = {
#ifdef TERN_WITH_MQTT
    &tern_uplink_mqtt,
#endif
#ifdef TERN_WITH_KAFKA
    &tern_uplink_kafka,
#endif
    NULL,
};

const struct tern_uplink_ops *const *tern_uplinks(void) { return uplinks; }

const struct tern_uplink_ops *tern_uplink_find(const char *name)
{
    for (size_t i = 0; uplinks[i]; i++)
        if (strcmp(uplinks[i]->name, name) == 0)
            return uplinks[i];
    return NULL;
}
