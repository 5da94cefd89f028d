/* registry.c - the table of built-in drivers, looked up by name. A driver is
 * added here and in drivers/CMakeLists.txt; nothing registers at run time. */
#include <stddef.h>
#include <string.h>

#include "driver.h"

extern const struct tern_driver tern_driver_sim;
extern const struct tern_driver tern_driver_thermal;
extern const struct tern_driver tern_driver_hwmon;
extern const struct tern_driver tern_driver_iio;
extern const struct tern_driver tern_driver_ds18b20;
extern const struct tern_driver tern_driver_bme280;
extern const struct tern_driver tern_driver_serial;
#ifdef TERN_WITH_MODBUS
extern const struct tern_driver tern_driver_modbus;
#endif

static const struct tern_driver *const drivers[] = {
    &tern_driver_sim,
    &tern_driver_thermal,
    &tern_driver_hwmon,
    &tern_driver_iio,
    &tern_driver_ds18b20,
    &tern_driver_bme280,
    &tern_driver_serial,
#ifdef TERN_WITH_MODBUS
    &tern_driver_modbus,
#endif
    NULL,
};

const struct tern_driver *const *tern_drivers(void) { return drivers; }

const struct tern_driver *tern_driver_find(const char *name)
{
    for (size_t i = 0; name && drivers[i]; i++)
        if (strcmp(drivers[i]->name, name) == 0)
            return drivers[i];
    return NULL;
}
