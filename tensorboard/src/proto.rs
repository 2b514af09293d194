//! The protobuf messages of a TensorBoard event file (a subset of `tensorflow/core/util/event.proto` and
//! `tensorflow/core/framework/summary.proto`), declared by hand so that no `protoc` is needed.

/// One record of an event file.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Event {
    /// Seconds since the Unix epoch.
    #[prost(double, tag = "1")]
    pub wall_time: f64,
    /// Global step.
    #[prost(int64, tag = "2")]
    pub step: i64,
    /// The file-version marker of the first record.
    #[prost(string, optional, tag = "3")]
    pub file_version: Option<String>,
    /// Summaries at this step.
    #[prost(message, optional, tag = "5")]
    pub summary: Option<Summary>,
}

/// A set of tagged values.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Summary {
    /// The values.
    #[prost(message, repeated, tag = "1")]
    pub value: Vec<Value>,
}

/// One tagged value: a scalar, an image or a histogram.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Value {
    /// The tag TensorBoard groups by.
    #[prost(string, tag = "1")]
    pub tag: String,
    /// A scalar.
    #[prost(float, optional, tag = "2")]
    pub simple_value: Option<f32>,
    /// An encoded image.
    #[prost(message, optional, tag = "4")]
    pub image: Option<Image>,
    /// A histogram.
    #[prost(message, optional, tag = "5")]
    pub histo: Option<HistogramProto>,
}

/// An encoded (PNG) image.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Image {
    /// Height in pixels.
    #[prost(int32, tag = "1")]
    pub height: i32,
    /// Width in pixels.
    #[prost(int32, tag = "2")]
    pub width: i32,
    /// Channels: 1 grey, 3 RGB, 4 RGBA.
    #[prost(int32, tag = "3")]
    pub colorspace: i32,
    /// The PNG bytes.
    #[prost(bytes = "vec", tag = "4")]
    pub encoded_image_string: Vec<u8>,
}

/// A histogram with explicit bucket upper limits.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HistogramProto {
    /// Smallest value.
    #[prost(double, tag = "1")]
    pub min: f64,
    /// Largest value.
    #[prost(double, tag = "2")]
    pub max: f64,
    /// Number of values.
    #[prost(double, tag = "3")]
    pub num: f64,
    /// Sum of the values.
    #[prost(double, tag = "4")]
    pub sum: f64,
    /// Sum of the squared values.
    #[prost(double, tag = "5")]
    pub sum_squares: f64,
    /// Upper edge of each bucket.
    #[prost(double, repeated, tag = "6")]
    pub bucket_limit: Vec<f64>,
    /// Count in each bucket.
    #[prost(double, repeated, tag = "7")]
    pub bucket: Vec<f64>,
}
