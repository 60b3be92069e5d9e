package snapshot

// manifestDict is the zstd dictionary (raw content, id manifestDictID) of
// a version 3 manifest: its JSON field names and the values they often
// take, in the order marshalManifest writes them. The manifest is some 2 KB
// of JSON that zstd otherwise compresses from nothing, so every field name
// costs its letters once, and the metrics' and lineage's names, repeated
// per entry, cost twice; with the dictionary they are matches of a few
// bits. It holds the schema only, nothing of a model or data set.
//
// Version 3 files decode with exactly these bytes: change them and those
// files no longer read. A new dictionary needs a new format version
// (TestManifestDictFixed holds its digest).
const manifestDict = `{"name":"","version":1,"model":{"kind":"mlp","kind":"cnn","kind":"softmax","kind":"linear",` +
	`"inputs":,"classes":,"outputs":,"hidden":[],"activation":"relu","activation":"tanh","head":"softmax","head":"squared",` +
	`"width":,"height":,"channels":,"filters":[],"labels":[""]},"labels":["",""],` +
	`"preprocess":{"clip":,"features":,"names":["",""],"rocket":{"channels":,"length":,"dilations":[],"features_per_dilation":[],"channel_sets":[[]],"biases":[]},"rows":},` +
	`"metrics":{"compressed.test":{"n":,"loss":0.,"rmse":,"mae":},"compressed.validation":{"n":,"loss":0.,"rmse":,"mae":},` +
	`"float.test":{"n":,"loss":0.,"rmse":,"mae":},"float.validation":{"n":,"loss":0.,"rmse":,"mae":},"float.window_train":{"n":,"loss":},` +
	`"compressed.test":{"n":,"loss":0.,"accuracy":0.,"balanced_accuracy":0.},"compressed.validation":{"n":,"loss":0.,"accuracy":0.,"balanced_accuracy":0.},` +
	`"float.test":{"n":,"loss":0.,"accuracy":0.,"balanced_accuracy":0.},"float.validation":{"n":,"loss":0.,"accuracy":0.,"balanced_accuracy":0.}},` +
	`"compression":{"weights":"float32"},"compression":{"weights":"float16"},"compression":{"sparsity":0.,"weights":"int8"},"compression":{"sparsity":0.,"weights":"shared"},` +
	`"lineage":{"sources":[{"kind":"parquet","use":"train","files":["",""]},{"kind":"parquet","use":"test","files":["",""]},` +
	`{"kind":"kafka","use":"train","topic":"","partition":,"from":,"to":},{"kind":"kafka","use":"test","topic":"","partition":,"from":,"to":}],` +
	`"spec_hash":"","muon_version":"","created":"20-T::.Z","window":"20-T::Z","base":"20-T::Z"}}`

// manifestDictID names manifestDict in a frame's header.
const manifestDictID = 3
