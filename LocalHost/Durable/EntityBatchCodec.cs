using DurableTask.Core;
using DurableTask.Core.Entities.OperationFormat;
using DurableTask.Core.Tracing;
using Google.Protobuf;
using P = Microsoft.DurableTask.Protobuf;

namespace TenantDb.LocalHost.Durable;

/// <summary>The engine's entity batch to and from the worker's protobuf wire form.</summary>
internal static class EntityBatchCodec
{
    public static string Encode(EntityBatchRequest request)
    {
        P.EntityBatchRequest proto = new() { InstanceId = request.InstanceId, EntityState = request.EntityState };
        foreach (var operation in request.Operations ?? [])
        {
            P.OperationRequest item = new() { Operation = operation.Operation, RequestId = operation.Id.ToString(), Input = operation.Input };
            if (operation.TraceContext is { } trace)
            {
                item.TraceContext = new P.TraceContext { TraceParent = trace.TraceParent, TraceState = trace.TraceState };
            }

            proto.Operations.Add(item);
        }

        return Convert.ToBase64String(proto.ToByteArray());
    }

    public static EntityBatchResult Decode(string encoded)
    {
        var proto = P.EntityBatchResult.Parser.ParseFrom(Convert.FromBase64String(encoded));
        return new EntityBatchResult
        {
            EntityState = proto.EntityState,
            FailureDetails = ToCore(proto.FailureDetails),
            Results = proto.Results.Select(ToCore).ToList(),
            Actions = proto.Actions.Select(ToCore).ToList(),
        };
    }

    private static OperationResult ToCore(P.OperationResult result) => result.ResultTypeCase switch
    {
        P.OperationResult.ResultTypeOneofCase.Success => new OperationResult
        {
            Result = result.Success.Result,
            StartTimeUtc = result.Success.StartTimeUtc?.ToDateTime(),
            EndTimeUtc = result.Success.EndTimeUtc?.ToDateTime(),
        },
        P.OperationResult.ResultTypeOneofCase.Failure => new OperationResult
        {
            FailureDetails = ToCore(result.Failure.FailureDetails),
            StartTimeUtc = result.Failure.StartTimeUtc?.ToDateTime(),
            EndTimeUtc = result.Failure.EndTimeUtc?.ToDateTime(),
        },
        _ => throw new InvalidOperationException($"Unknown entity operation result '{result.ResultTypeCase}'."),
    };

    private static OperationAction ToCore(P.OperationAction action) => action.OperationActionTypeCase switch
    {
        P.OperationAction.OperationActionTypeOneofCase.SendSignal => new SendSignalOperationAction
        {
            Name = action.SendSignal.Name,
            Input = action.SendSignal.Input,
            InstanceId = action.SendSignal.InstanceId,
            ScheduledTime = action.SendSignal.ScheduledTime?.ToDateTime(),
            RequestTime = action.SendSignal.RequestTime?.ToDateTimeOffset(),
            ParentTraceContext = ToCore(action.SendSignal.ParentTraceContext),
        },
        P.OperationAction.OperationActionTypeOneofCase.StartNewOrchestration => new StartNewOrchestrationOperationAction
        {
            Name = action.StartNewOrchestration.Name,
            Input = action.StartNewOrchestration.Input,
            InstanceId = action.StartNewOrchestration.InstanceId,
            Version = action.StartNewOrchestration.Version,
            ScheduledStartTime = action.StartNewOrchestration.ScheduledTime?.ToDateTime(),
            RequestTime = action.StartNewOrchestration.RequestTime?.ToDateTimeOffset(),
            ParentTraceContext = ToCore(action.StartNewOrchestration.ParentTraceContext),
        },
        _ => throw new InvalidOperationException($"Unknown entity action '{action.OperationActionTypeCase}'."),
    };

    private static DistributedTraceContext? ToCore(P.TraceContext? trace) =>
        trace is null ? null : new DistributedTraceContext(trace.TraceParent, trace.TraceState);

    private static FailureDetails? ToCore(P.TaskFailureDetails? failure) => failure is null
        ? null
        : new FailureDetails(failure.ErrorType, failure.ErrorMessage, failure.StackTrace, ToCore(failure.InnerFailure), failure.IsNonRetriable);
}
