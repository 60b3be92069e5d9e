// Package recording reads recorded sensor data and image folders and turns
// them into the Kafka records a live device would have produced, so that
// `muon produce` can replay real recordings into a topic.
//
// [Open] picks the reader from the path:
//
//   - a .ts file (the UEA/UCR time-series archive format, as written by
//     sktime): one device per case, one sensor reading per time step, the
//     cases interleaved in event-time order as if they streamed concurrently;
//   - a .csv file with a header line: one sensor reading per row;
//   - a directory: every PNG, JPEG and PGM image under it, labelled by the
//     top-level sub-folder it sits in;
//   - with Options.Format cmapss, a NASA C-MAPSS turbofan file: one device
//     per engine, one reading per operating cycle, labelled with the
//     remaining useful life, the engines interleaved in event-time order.
//
// Sensor readings are encoded with [message.AppendReading]; images travel
// unchanged with the headers of the image contract (see package message).
// Every message a [Source] returns has passed the same validation the decode
// stage applies, so a recording never feeds the dead-letter topic.
//
// CSV files and image folders are streamed; .ts and C-MAPSS files are parsed
// whole when they are opened (interleaving their devices, and labelling a
// C-MAPSS row with the cycles left, need all rows), so any error in them is
// reported, with file and line, before the first message is produced.
package recording
