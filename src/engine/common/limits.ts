/** Protocol and storage limits shared by every layer. Units are in the names. */

/** RocketMQ's default maximum message body (`maxMessageSize`, 4 MiB). */
export const DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024;
/** A topic name is at most 127 characters (RocketMQ `TOPIC_MAX_LENGTH`). */
export const TOPIC_MAX_LENGTH = 127;
/** The properties string is stored behind a 2-byte length. */
export const PROPERTIES_MAX_BYTES = 32767;
/** RocketMQ's remoting decoder refuses frames over 16 MiB (`frameMaxLength`). */
export const DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024;
