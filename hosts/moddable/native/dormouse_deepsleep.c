/*
 * dormouse/deepsleep for ESP32: deep sleep with a timer wake-up, the wake
 * cause, and a buffer in RTC slow memory that survives deep sleep.
 *
 * Written against ESP-IDF v6.0's sleep API (esp_sleep.h; no deprecated calls)
 * and XS in C (xsmc.h).
 * The JavaScript side is hosts/moddable/deepsleep.ts; the declarations are
 * hosts/moddable/typings/dormouse-deepsleep.d.ts.
 *
 *   sleep(ms)                 timer wake-up after ms, then deep sleep; does not return
 *   wakeCause()               0 reset/power-on, 1 timer, 2 pin (ext0/ext1/gpio), 3 touch, 4 ULP, 5 other
 *   rtcLength()               bytes in the RTC region (DORMOUSE_RTC_BYTES)
 *   rtcRead(offset, into)     copy region[offset, offset + into.byteLength) into a buffer
 *   rtcWrite(offset, bytes)   copy a buffer into region[offset, ...)
 *
 * The region is RTC_NOINIT_ATTR: kept through deep sleep and software
 * resets, never initialised by the startup code, so after power-on it holds
 * garbage. Callers must validate what they read (stores.ts does: magic,
 * length and CRC-32 per slot).
 */

#include <string.h>

#include "xsmc.h"
#include "xsHost.h"

#include "esp_attr.h"
#include "esp_bit_defs.h"
#include "esp_sleep.h"
#include "esp_wifi.h"
#include "soc/soc_caps.h"

#ifndef DORMOUSE_RTC_BYTES
	/* Half of the ESP32's 8 KiB RTC slow memory: ESP-IDF keeps its own RTC data there too. */
	#define DORMOUSE_RTC_BYTES 4096
#endif

static RTC_NOINIT_ATTR uint32_t gDormouseRtc[DORMOUSE_RTC_BYTES / 4];	/* word array: RTC memory is word-aligned */

/* Our stable numbers for ESP-IDF's wake-up causes; ESP-IDF's own enum values moved between releases. */
enum {
	kWakeReset = 0,
	kWakeTimer = 1,
	kWakePin = 2,
	kWakeTouch = 3,
	kWakeUlp = 4,
	kWakeOther = 5
};

void xs_dormouse_sleep(xsMachine *the)
{
	xsNumberValue ms = xsmcToNumber(xsArg(0));
	uint64_t us;

	if (!(ms >= 1) || (ms > 1e12))		/* also rejects NaN */
		xsRangeError("sleep: ms must be from 1 to 1e12");
	us = (uint64_t)(ms * 1000.0);
	if (ESP_OK != esp_sleep_enable_timer_wakeup(us))
		xsRangeError("sleep: period too long for the RTC timer");

#if SOC_PM_SUPPORT_RTC_SLOW_MEM_PD
	/* Keep the RTC region powered whatever "auto" would decide for the sections in use. */
	esp_sleep_pd_config(ESP_PD_DOMAIN_RTC_SLOW_MEM, ESP_PD_OPTION_ON);
#endif

	/* ESP-IDF asks for Wi-Fi to be stopped before deep sleep; an error here only means it was not started. */
	esp_wifi_stop();
	esp_deep_sleep_start();
}

void xs_dormouse_wake_cause(xsMachine *the)
{
	/*
	 * ESP-IDF v6.0: a bit mask, BIT(ESP_SLEEP_WAKEUP_x) per source that woke the chip
	 * (several can at once); 0 when this boot is not a wake from sleep. It replaces
	 * esp_sleep_get_wakeup_cause(), deprecated in v6.0 (migration guide, "System",
	 * "Power Management"). One number is reported: the timer first (a sensor's
	 * schedule), then pins, touch, ULP.
	 */
	uint32_t causes = esp_sleep_get_wakeup_causes();
	int cause;

	if (0 == causes)
		cause = kWakeReset;
	else if (causes & BIT(ESP_SLEEP_WAKEUP_TIMER))
		cause = kWakeTimer;
	else if (causes & (BIT(ESP_SLEEP_WAKEUP_EXT0) | BIT(ESP_SLEEP_WAKEUP_EXT1) | BIT(ESP_SLEEP_WAKEUP_GPIO)))
		cause = kWakePin;
	else if (causes & BIT(ESP_SLEEP_WAKEUP_TOUCHPAD))
		cause = kWakeTouch;
	else if (causes & BIT(ESP_SLEEP_WAKEUP_ULP))
		cause = kWakeUlp;
	else if (causes == BIT(ESP_SLEEP_WAKEUP_UNDEFINED))
		cause = kWakeReset;
	else
		cause = kWakeOther;
	xsmcSetInteger(xsResult, cause);
}

void xs_dormouse_rtc_length(xsMachine *the)
{
	xsmcSetInteger(xsResult, DORMOUSE_RTC_BYTES);
}

/* Offset first: converting it cannot move the buffer we take a pointer to afterwards. */
static uint8_t *rtcRange(xsMachine *the, xsIntegerValue offset, xsUnsignedValue length)
{
	if ((offset < 0) || (length > DORMOUSE_RTC_BYTES) || ((xsUnsignedValue)offset > (DORMOUSE_RTC_BYTES - length)))
		xsRangeError("rtc: outside the %d-byte RTC region", DORMOUSE_RTC_BYTES);
	return (uint8_t *)gDormouseRtc + offset;
}

void xs_dormouse_rtc_read(xsMachine *the)
{
	xsIntegerValue offset = xsmcToInteger(xsArg(0));
	void *data;
	xsUnsignedValue length;

	xsmcGetBufferWritable(xsArg(1), &data, &length);
	memcpy(data, rtcRange(the, offset, length), length);
}

void xs_dormouse_rtc_write(xsMachine *the)
{
	xsIntegerValue offset = xsmcToInteger(xsArg(0));
	void *data;
	xsUnsignedValue length;

	xsmcGetBufferReadable(xsArg(1), &data, &length);
	memcpy(rtcRange(the, offset, length), data, length);
}
