/**
 * Imported first by the broker benchmark and its server child: the engine's logger reads
 * RB_LOG_LEVEL when its module loads and writes to stdout, so the level must be lowered before any
 * engine module is evaluated, or info lines would mix with the figures (and with the child's
 * control lines on stdout).
 */
process.env['RB_LOG_LEVEL'] ??= 'warn';

export {};
