/**
 * The one file that imports the tar implementation (`modern-tar`: web streams, PAX, links),
 * so that it can be swapped for `@std/tar` once that writes hardlinks and PAX headers.
 *
 * @module
 */
export {
  createTarDecoder,
  createTarPacker,
  type ParsedTarEntry,
  type TarHeader,
  type TarPackController,
} from "npm:modern-tar@0.8.6";
