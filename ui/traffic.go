package ui

import (
	"errors"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/segwatch/segwatch/index/traffic"
)

// TrafficSource answers GET /api/v1/traffic from the segment rollup.
type TrafficSource interface {
	Query(from, to time.Time, step time.Duration) (traffic.Result, error)
}

// handleTraffic serves the segment-traffic matrix and per-segment series
// (SPEC §5). from/to take the same forms as search (default: the last 24 h);
// step is a Go duration in whole minutes (default: chosen from the range).
func (s *Server) handleTraffic(c *fiber.Ctx) error {
	if s.traffic == nil {
		return fiber.NewError(fiber.StatusNotFound, "traffic accounting is off (no NetFlow listener)")
	}
	now := s.now()
	to, from := now, now.Add(-DefaultRange)
	var err error
	if v := c.Query("to"); v != "" {
		if to, err = parseTime(v, now); err != nil {
			return c.Status(fiber.StatusBadRequest).JSON(fiber.Map{"error": "to: " + err.Error(), "param": "to"})
		}
		if c.Query("from") == "" {
			from = to.Add(-DefaultRange)
		}
	}
	if v := c.Query("from"); v != "" {
		if from, err = parseTime(v, now); err != nil {
			return c.Status(fiber.StatusBadRequest).JSON(fiber.Map{"error": "from: " + err.Error(), "param": "from"})
		}
	}
	var step time.Duration
	if v := c.Query("step"); v != "" {
		if step, err = time.ParseDuration(v); err != nil || step < 0 {
			return c.Status(fiber.StatusBadRequest).JSON(fiber.Map{"error": "step: want a duration such as 5m or 1h", "param": "step"})
		}
	}
	res, err := s.traffic.Query(from, to, step)
	if errors.Is(err, traffic.ErrBadRange) {
		return c.Status(fiber.StatusBadRequest).JSON(fiber.Map{"error": err.Error()})
	}
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(res)
}
