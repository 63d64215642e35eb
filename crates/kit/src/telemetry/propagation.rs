//! Trace context without recorded spans, for a service that exports none.
//!
//! The OpenTelemetry layer records every span as it goes (a span builder with its fields as
//! attributes, then an SDK span built and ended at close) so that an exporter can send it. With
//! no exporter all of that is thrown away, yet it was about a tenth of the services' own CPU in
//! the burst of chain runs (docs/benchmarks.md). What a service needs when nothing collects its
//! spans is the W3C trace context: a trace id and flags taken from the request, or new, and a
//! span id of its own, to send on with its calls and events and to name in its log lines.
//! [`Propagation`] keeps exactly that in each span's extensions ([`Propagated`]); [`context_of`]
//! and [`adopt`] are how the rest of [`super`] reads and sets it.

use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceState};
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator};
use tracing::Subscriber;
use tracing::span::{Attributes, Id};
use tracing_subscriber::Registry;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::{LookupSpan, SpanData};

/// A span's trace context: its trace, its own span id, and the flags it passes on.
#[derive(Clone, Debug)]
pub(crate) struct Propagated(pub(crate) SpanContext);

/// Gives each span it sees a [`Propagated`] context: its parent's trace and flags with a new
/// span id, or a new trace (sampled, as the SDK's default sampler marks a root) for a root.
#[derive(Debug, Default)]
pub(crate) struct Propagation {
    ids: RandomIdGenerator,
}

impl<S> tracing_subscriber::Layer<S> for Propagation
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let parent = if let Some(parent) = attrs.parent() {
            ctx.span(parent)
        } else if attrs.is_contextual() {
            ctx.lookup_current()
        } else {
            None
        };
        let parent = parent.and_then(|span| span.extensions().get::<Propagated>().cloned());
        let context = match parent {
            Some(Propagated(parent)) => in_trace_of(&parent, self.ids.new_span_id()),
            None => SpanContext::new(
                self.ids.new_trace_id(),
                self.ids.new_span_id(),
                TraceFlags::SAMPLED,
                false,
                TraceState::NONE,
            ),
        };
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(Propagated(context));
        }
    }
}

/// Runs `f` on the [`Propagated`] context of `span`, when the subscriber keeps one for it.
fn with_propagated<R>(span: &tracing::Span, f: impl FnOnce(&mut Propagated) -> R) -> Option<R> {
    span.with_subscriber(|(id, dispatch)| {
        let registry = dispatch.downcast_ref::<Registry>()?;
        let data = registry.span_data(id)?;
        let mut extensions = data.extensions_mut();
        extensions.get_mut::<Propagated>().map(f)
    })
    .flatten()
}

/// `span`'s trace context, when [`Propagation`] keeps one for it.
pub(crate) fn context_of(span: &tracing::Span) -> Option<SpanContext> {
    with_propagated(span, |propagated| propagated.0.clone())
}

/// Puts `span` in the trace of `remote` (a request's `traceparent`), keeping its own span id,
/// when [`Propagation`] keeps a context for it.
pub(crate) fn adopt(span: &tracing::Span, remote: &SpanContext) {
    with_propagated(span, |propagated| {
        propagated.0 = in_trace_of(remote, propagated.0.span_id());
    });
}

/// The context of span `span_id` in the trace of `trace` (its id, flags and state).
fn in_trace_of(trace: &SpanContext, span_id: SpanId) -> SpanContext {
    SpanContext::new(
        trace.trace_id(),
        span_id,
        trace.trace_flags(),
        false,
        trace.trace_state().clone(),
    )
}
