// Hands the lin flash stand-in (as `embedded:storage/flash`) to the test.
import Flash from 'embedded:storage/flash';
(globalThis as unknown as { __linFlash: unknown }).__linFlash = Flash;
