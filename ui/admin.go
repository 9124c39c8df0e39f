package ui

import (
	"bytes"
	"encoding/json"
	"errors"

	"github.com/gofiber/fiber/v2"

	"github.com/segwatch/segwatch/ui/auth"
)

// decodeJSON reads a JSON request body into v, refusing unknown fields so a
// misspelt key is an error rather than a silent default.
func decodeJSON(c *fiber.Ctx, v any) error {
	dec := json.NewDecoder(bytes.NewReader(c.Body()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fiber.NewError(fiber.StatusBadRequest, "body: "+err.Error())
	}
	return nil
}

// storeError maps the auth store's errors to HTTP statuses; anything else
// is a 500.
func storeError(err error) error {
	switch {
	case errors.Is(err, auth.ErrNotFound):
		return fiber.NewError(fiber.StatusNotFound, err.Error())
	case errors.Is(err, auth.ErrExists):
		return fiber.NewError(fiber.StatusConflict, err.Error())
	case errors.Is(err, auth.ErrInvalid):
		return fiber.NewError(fiber.StatusBadRequest, err.Error())
	}
	return err
}

func (s *Server) handleListTokens(c *fiber.Ctx) error {
	list, err := s.auth.ListTokens(c.UserContext())
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"tokens": list})
}

func (s *Server) handleCreateToken(c *fiber.Ctx) error {
	var in struct {
		Name string `json:"name"`
		Role string `json:"role"`
	}
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	role, err := auth.ParseRole(in.Role)
	if err != nil {
		return fiber.NewError(fiber.StatusBadRequest, "role: "+err.Error())
	}
	tok, err := s.auth.CreateToken(c.UserContext(), in.Name, role)
	if err != nil {
		return storeError(err)
	}
	p, _ := principalOf(c)
	s.log.Info("api token created", "name", in.Name, "role", role, "by", p.Name)
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Status(fiber.StatusCreated).JSON(fiber.Map{"name": in.Name, "role": role, "token": tok})
}

func (s *Server) handleRevokeToken(c *fiber.Ctx) error {
	name := c.Params("name")
	if err := s.auth.RevokeToken(c.UserContext(), name); err != nil {
		return storeError(err)
	}
	p, _ := principalOf(c)
	s.log.Info("api token revoked", "name", name, "by", p.Name)
	return c.SendStatus(fiber.StatusNoContent)
}

func (s *Server) handleListUsers(c *fiber.Ctx) error {
	list, err := s.auth.ListUsers(c.UserContext())
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"users": list})
}

func (s *Server) handleAddUser(c *fiber.Ctx) error {
	var in struct {
		Name     string `json:"name"`
		Role     string `json:"role"`
		Password string `json:"password"`
	}
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	role, err := auth.ParseRole(in.Role)
	if err != nil {
		return fiber.NewError(fiber.StatusBadRequest, "role: "+err.Error())
	}
	if err := s.auth.AddUser(c.UserContext(), in.Name, role, in.Password); err != nil {
		return storeError(err)
	}
	p, _ := principalOf(c)
	s.log.Info("ui user added", "name", in.Name, "role", role, "by", p.Name)
	return c.Status(fiber.StatusCreated).JSON(fiber.Map{"name": in.Name, "role": role})
}

func (s *Server) handleRemoveUser(c *fiber.Ctx) error {
	name := c.Params("name")
	if err := s.auth.RemoveUser(c.UserContext(), name); err != nil {
		return storeError(err)
	}
	p, _ := principalOf(c)
	s.log.Info("ui user removed", "name", name, "by", p.Name)
	return c.SendStatus(fiber.StatusNoContent)
}
